"""SQL for what the HTTP server shows: feed items, the status page, and health probes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow

_ITEM_COLUMNS = (
    "a.docid, a.source_tid, coalesce(s.name, a.account_name) AS account, a.title, a.url, a.published_at,"
    " a.first_seen_at, a.last_changed_at, a.last_fetched_at, a.revision, a.body_html, a.body_text, a.images,"
    " a.ip_location"
)
_LIVE = "a.deleted_at IS NULL AND a.content_hash IS NOT NULL"
# Degraded: checks "work" but find nothing usable (markup changed?); failing: checks fail outright.
_DEGRADED = "s.last_status IN ('empty', 'parse_failed', 'degraded')"
_FAILING = "(s.consecutive_failures > 0 OR s.last_status IN ('not_found', 'http_error', 'error', 'blocked'))"


def ping(conn: psycopg.Connection[DictRow]) -> bool:
    """True when the database answers a trivial query."""
    row = conn.execute("SELECT 1 AS one").fetchone()
    return row is not None and row["one"] == 1


def limit_statement_time(conn: psycopg.Connection[DictRow], seconds: float) -> None:
    """Make every later statement on this connection give up after ``seconds``."""
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{int(seconds * 1000)}ms",))


def feed_articles(conn: psycopg.Connection[DictRow], limit: int, source_tid: str | None = None) -> list[dict[str, Any]]:
    """Live articles with full text, newest first (by when haowatch first saw them)."""
    if source_tid:
        return conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM articles a LEFT JOIN sources s ON s.tid = a.source_tid"
            f" WHERE a.source_tid = %s AND {_LIVE} ORDER BY a.first_seen_at DESC, a.docid LIMIT %s",
            (source_tid, limit),
        ).fetchall()
    return conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM articles a LEFT JOIN sources s ON s.tid = a.source_tid"
        f" WHERE {_LIVE} ORDER BY a.first_seen_at DESC, a.docid LIMIT %s",
        (limit,),
    ).fetchall()


def has_search_function(conn: psycopg.Connection[DictRow]) -> bool:
    """Whether the full-text ``search_articles(query, lim)`` function exists in this database."""
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE p.proname = 'search_articles' AND p.pronargs >= 2 AND n.nspname = current_schema()"
    ).fetchone()
    return bool(row and row["n"])


def search_feed_articles(conn: psycopg.Connection[DictRow], query: str, limit: int) -> list[dict[str, Any]]:
    """Articles matching ``query``: full-text ``search_articles`` when present, else a title match."""
    if has_search_function(conn):
        return conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM search_articles(%s, %s) WITH ORDINALITY AS m"
            " JOIN articles a ON a.docid = m.docid LEFT JOIN sources s ON s.tid = a.source_tid"
            f" WHERE {_LIVE} ORDER BY m.ordinality",
            (query, limit),
        ).fetchall()
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM articles a LEFT JOIN sources s ON s.tid = a.source_tid"
        f" WHERE a.title ILIKE %s AND {_LIVE} ORDER BY a.first_seen_at DESC, a.docid LIMIT %s",
        (pattern, limit),
    ).fetchall()


def change_events(conn: psycopg.Connection[DictRow], limit: int,
                  kinds: Sequence[str] = ("edited", "deleted", "restored")) -> list[dict[str, Any]]:
    """Recent edit / deletion events with their article's current facts, newest first."""
    return conn.execute(
        "SELECT e.id, e.kind, e.created_at, e.docid, e.source_tid, e.title, e.payload,"
        " coalesce(s.name, a.account_name) AS account, a.url, a.published_at, a.body_html"
        " FROM events e LEFT JOIN articles a ON a.docid = e.docid LEFT JOIN sources s ON s.tid = e.source_tid"
        " WHERE e.kind = ANY(%s) ORDER BY e.created_at DESC, e.id DESC LIMIT %s",
        (list(kinds), limit),
    ).fetchall()


def status_sources(conn: psycopg.Connection[DictRow], limit: int) -> list[dict[str, Any]]:
    """Sources for the status page: failing first, then degraded, then the rest; with today's new articles."""
    return conn.execute(
        "SELECT s.tid, s.name, s.enabled, s.last_status, s.last_error, s.consecutive_failures,"
        " s.last_checked_at, s.next_check_at, s.last_success_at,"
        f" CASE WHEN NOT s.enabled THEN 'paused' WHEN {_DEGRADED} THEN 'degraded'"
        f" WHEN {_FAILING} THEN 'failing' ELSE 'ok' END AS health,"
        " coalesce(t.n, 0) AS today"
        " FROM sources s LEFT JOIN ("
        "   SELECT source_tid, count(*) AS n FROM articles WHERE first_seen_at >= date_trunc('day', now())"
        "   GROUP BY source_tid) t ON t.source_tid = s.tid"
        f" ORDER BY CASE WHEN NOT s.enabled THEN 3 WHEN {_DEGRADED} THEN 1 WHEN {_FAILING} THEN 0 ELSE 2 END,"
        " s.consecutive_failures DESC, s.added_at, s.tid LIMIT %s",
        (limit,),
    ).fetchall()


def count_sources(conn: psycopg.Connection[DictRow]) -> int:
    """How many sources there are."""
    row = conn.execute("SELECT count(*) AS n FROM sources").fetchone()
    return int(row["n"]) if row else 0


def db_now(conn: psycopg.Connection[DictRow]) -> datetime:
    """The database's clock (checks are stamped with it, so compare against it)."""
    row = conn.execute("SELECT now() AS now").fetchone()
    assert row is not None
    return row["now"]
