"""SQL for the ``sources`` table: watched accounts, their schedule and their health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

SOURCE_COLUMNS = (
    "tid, name, wemedia_id, extract(epoch FROM interval)::int AS interval_seconds, enabled, added_at,"
    " next_check_at, last_checked_at, last_success_at, last_status, last_error, consecutive_failures,"
    " last_item_count, claimed_by, claimed_until"
)


def add_source(conn: psycopg.Connection, tid: str, interval_seconds: int | None = None,
               name: str | None = None) -> bool:
    """Add a source; return False (and change nothing) when it already exists."""
    row = conn.execute(
        "INSERT INTO sources (tid, name, interval) VALUES (%s, %s, coalesce(%s, interval '30 minutes'))"
        " ON CONFLICT (tid) DO NOTHING RETURNING tid",
        (tid, name, timedelta(seconds=interval_seconds) if interval_seconds else None),
    ).fetchone()
    return row is not None


def get_source(conn: psycopg.Connection, tid: str) -> dict[str, Any] | None:
    """One source as a dict, or None."""
    return conn.execute(f"SELECT {SOURCE_COLUMNS} FROM sources WHERE tid = %s", (tid,)).fetchone()


def list_sources(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every source, in the order they were added."""
    return conn.execute(f"SELECT {SOURCE_COLUMNS} FROM sources ORDER BY added_at, tid").fetchall()


def remove_source(conn: psycopg.Connection, tid: str) -> bool:
    """Stop watching a source. Its articles, links and history stay."""
    return conn.execute("DELETE FROM sources WHERE tid = %s RETURNING tid", (tid,)).fetchone() is not None


def set_enabled(conn: psycopg.Connection, tid: str, enabled: bool) -> bool:
    """Pause or resume a source; a resumed source is due at once."""
    row = conn.execute(
        "UPDATE sources SET enabled = %s,"
        " next_check_at = CASE WHEN %s THEN least(next_check_at, now()) ELSE next_check_at END"
        " WHERE tid = %s RETURNING tid",
        (enabled, enabled, tid),
    ).fetchone()
    return row is not None


def set_interval(conn: psycopg.Connection, tid: str, interval_seconds: int) -> bool:
    """Change how often a source is checked; the next check moves accordingly."""
    row = conn.execute(
        "UPDATE sources SET interval = %s,"
        " next_check_at = least(next_check_at, coalesce(last_checked_at, now()) + %s)"
        " WHERE tid = %s RETURNING tid",
        (timedelta(seconds=interval_seconds), timedelta(seconds=interval_seconds), tid),
    ).fetchone()
    return row is not None


def set_account_facts(conn: psycopg.Connection, tid: str, name: str | None, wemedia_id: str | None) -> None:
    """Fill in the account name and W-id learnt from pages, never overwriting a user's name with nothing."""
    conn.execute(
        "UPDATE sources SET name = coalesce(name, %s), wemedia_id = coalesce(%s, wemedia_id) WHERE tid = %s",
        (name, wemedia_id, tid),
    )
