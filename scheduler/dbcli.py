"""``haowatch db shell`` and ``haowatch db url``: the database in use, for psql and other tools."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db.embedded import EmbeddedServer, embedded_server, wheel_bindirs
from scheduler.config import Settings


class ShellError(RuntimeError):
    """``db shell`` cannot run (no psql found); printed as one line, exit code 1."""


def split_password(url: str) -> tuple[str, str | None]:
    """The connection string without its password, and the password (None when it has none)."""
    if not url.startswith(("postgresql://", "postgres://")):
        params = conninfo_to_dict(url)
        password = params.pop("password", None)
        return make_conninfo("", **params), (str(password) if password is not None else None)
    parts = urlsplit(url)
    netloc, password = parts.netloc, None
    userinfo, at, hostinfo = netloc.rpartition("@")
    if at and ":" in userinfo:
        user, _, raw = userinfo.partition(":")
        netloc, password = f"{user}@{hostinfo}", unquote(raw)
    query = parse_qsl(parts.query, keep_blank_values=True)
    password = next((v for k, v in query if k == "password"), password)
    kept = urlencode([(k, v) for k, v in query if k != "password"], safe="/", quote_via=quote)
    return urlunsplit((parts.scheme, netloc, parts.path, kept, parts.fragment)), password


@contextlib.contextmanager
def _in_use(settings: Settings) -> Iterator[tuple[str, EmbeddedServer | None]]:
    if settings.database_url:
        yield settings.database_url, None
        return
    with embedded_server(settings.data_dir, settings.pg_bindir) as server:
        yield server.url(), server


def _find_psql(server: EmbeddedServer | None) -> str:
    candidates: list[Path] = []
    if server is not None:
        candidates.append(server.bindir / "psql")
    found = shutil.which("psql")
    if found:
        candidates.append(Path(found))
    candidates.extend(b / "psql" for b in wheel_bindirs())
    for cand in candidates:
        if os.access(cand, os.X_OK):
            return str(cand)
    raise ShellError("psql not found: install the PostgreSQL client (Debian/Ubuntu: apt install postgresql-client)")


def cmd_db_shell(args: argparse.Namespace, settings: Settings) -> int:
    """Run psql on the database in use; extra arguments (after ``--``) go to psql."""
    extra = [a for a in (args.psql_args or []) if a != "--"]
    with _in_use(settings) as (url, server):
        psql = _find_psql(server)
        conninfo, password = split_password(url)
        env = dict(os.environ)
        if password is not None:
            env["PGPASSWORD"] = password  # not on the command line, where `ps` would show it
        # psql handles Ctrl-C itself (cancels the query); haowatch waits for it to exit.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.call([psql, *extra, conninfo], env=env)
        finally:
            signal.signal(signal.SIGINT, previous)


def cmd_db_url(args: argparse.Namespace, settings: Settings) -> int:
    """Print a connection URL of the database in use (the password only with ``--show-secret``)."""
    with _in_use(settings) as (url, server):
        if args.show_secret:
            print(url)
        else:
            print(split_password(url)[0])
        if server is not None:
            print(f"(embedded server: it runs while a haowatch command does, e.g. `haowatch run`; password in "
                  f"{server.secrets_file}{'' if args.show_secret else ', or use --show-secret'})", file=sys.stderr)
    return 0
