"""Where the database is: ``DATABASE_URL`` when set, else the embedded server."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.rows import DictRow, dict_row

from db.embedded import embedded_server


@contextlib.contextmanager
def database_url(
    configured: str | None, data_dir: Path | None = None, bindir: Path | None = None
) -> Iterator[str]:
    """Yield a usable database URL, running the embedded server around the block when none is configured."""
    if configured:
        yield configured
        return
    with embedded_server(data_dir, bindir) as server:
        yield server.url()


def connect(url: str, *, autocommit: bool = True, application_name: str = "haowatch") -> psycopg.Connection[DictRow]:
    """Open a connection; rows come back as dicts. Application name shows in ``pg_stat_activity``."""
    return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row, application_name=application_name)


_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*@")
_PASSWORD_KV = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide passwords in connection strings and error messages before they are logged or printed."""
    return _PASSWORD_KV.sub(r"\1***", _PASSWORD_IN_URL.sub(r"\1***@", text))
