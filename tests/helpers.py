"""Small helpers shared by tests: run the real ``haowatch`` console script."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow

from db.embedded import throwaway_server

HAOWATCH = str(Path(sys.executable).with_name("haowatch"))


def run_cli(*args: str, db_url: str | None = None, env: dict[str, str] | None = None,
            stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``haowatch ARGS`` as a user would, with a clean environment pointing at ``db_url``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    full_env["HAOWATCH_ENV_FILE"] = "/nonexistent"
    if db_url:
        full_env["DATABASE_URL"] = db_url
    full_env.update(env or {})
    return subprocess.run(
        [HAOWATCH, *args], capture_output=True, env=full_env, timeout=timeout,
        input=stdin.decode("utf-8", "replace") if stdin is not None else None, text=True, check=False,
    )


@contextlib.contextmanager
def maintenance_url() -> Iterator[str]:
    """``TEST_DATABASE_URL`` (or ``DATABASE_URL``) when set, else a throwaway server's maintenance database."""
    configured = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    with throwaway_server() as server:
        yield server.admin_url()


def one(conn: Connection[DictRow], query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> DictRow:
    """The first row a query returns; the test fails when it returns none."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, f"no row from {query!r}"
    return row
