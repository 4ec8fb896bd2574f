"""Numbered SQL migrations in ``db/migrations``: applied in order, once, each in its own transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

# Any fixed 64-bit number works; it only has to be the same for every haowatch process.
MIGRATION_LOCK_KEY = 0x6861_6F77_6174_6368 & 0x7FFF_FFFF_FFFF_FFFF

_NAME_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """All migration files shipped with the package, in version order."""
    found: list[Migration] = []
    for entry in (Path(__file__).parent / "migrations").iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in db/migrations: {versions}")
    return found


def applied_versions(conn: psycopg.Connection[Any]) -> set[int]:
    """Versions recorded in ``schema_migrations`` (empty before the first upgrade)."""
    cur = conn.cursor(row_factory=tuple_row)
    exists = cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in cur.execute("SELECT version FROM schema_migrations")}


def upgrade(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Apply every migration not yet applied; return the ones this call applied.

    Safe to run repeatedly and from several processes at once: a session advisory lock serialises
    upgraders, and each migration commits together with its row in ``schema_migrations``.
    """
    if not conn.autocommit:
        conn.commit()
        conn.autocommit = True
    applied_now: list[Migration] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = applied_versions(conn)
        for migration in available_migrations():
            if migration.version in done:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode("utf-8"))
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied_now.append(migration)
        ensure_partitions(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def ensure_partitions(conn: psycopg.Connection[Any]) -> int:
    """Create this and the next two months' partitions of the time-partitioned tables (when the schema has them).

    Rows of a month without its partition land in a default partition and move into the month's
    partition when it is created, so a service that missed this keeps working.
    """
    cur = conn.cursor(row_factory=tuple_row)
    exists = cur.execute("SELECT to_regprocedure('haowatch_ensure_partitions(timestamptz)') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = cur.execute("SELECT haowatch_ensure_partitions()").fetchone()
    return int(row[0]) if row else 0
