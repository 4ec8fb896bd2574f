"""SQL for discovery channels: per-source channel health, cross-check counters and gaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check of one source needs to know before it decides which channels to ask."""

    has_history: bool
    checks_since_cross_check: int
    last_status: str | None
    wemedia_id: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class ChannelOutcome:
    """How one channel answered during one check."""

    channel: str
    status: str
    error: str | None
    http_status: int | None
    item_count: int
    drift_items: int = 0


def check_context(conn: psycopg.Connection[Any], tid: str) -> CheckContext:
    """History, cross-check counter and last status of a source, with the database's clock."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM listed_items WHERE source_tid = %(tid)s) AS has_history,"
        " (SELECT checks_since_cross_check FROM sources WHERE tid = %(tid)s) AS checks,"
        " (SELECT last_status FROM sources WHERE tid = %(tid)s) AS last_status,"
        " (SELECT wemedia_id FROM sources WHERE tid = %(tid)s) AS wemedia_id,"
        " now() AS now",
        {"tid": tid},
    ).fetchone()
    assert row is not None
    return CheckContext(bool(row["has_history"]), int(row["checks"] or 0), row["last_status"],
                        row["wemedia_id"], row["now"])


def known_ids(conn: psycopg.Connection[Any], tid: str, ids: Sequence[str], before: datetime) -> set[str]:
    """Which of ``ids`` this source had listed before ``before`` (the start of the current check)."""
    if not ids:
        return set()
    rows = conn.execute(
        "SELECT item_id FROM listed_items WHERE item_id = ANY(%s) AND first_listed_at < %s",
        (list(ids), before),
    ).fetchall()
    return {r["item_id"] for r in rows}


def record_channels(conn: psycopg.Connection[Any], tid: str, outcomes: Sequence[ChannelOutcome], *,
                    active_channel: str | None, cross_checked: bool) -> None:
    """Store each channel's answer and the source's active channel, in one transaction."""
    with conn.transaction():
        for o in outcomes:
            ok = o.status == "ok"
            conn.execute(
                "INSERT INTO source_channels AS c (tid, channel, last_status, last_error, last_http_status,"
                "  last_item_count, last_checked_at, last_ok_at, consecutive_failures, drift_items)"
                " VALUES (%(tid)s, %(ch)s, %(st)s, %(err)s, %(http)s, %(n)s, now(),"
                "  CASE WHEN %(ok)s THEN now() END, CASE WHEN %(ok)s THEN 0 ELSE 1 END, %(drift)s)"
                " ON CONFLICT (tid, channel) DO UPDATE SET last_status = excluded.last_status,"
                "  last_error = excluded.last_error, last_http_status = excluded.last_http_status,"
                "  last_item_count = excluded.last_item_count, last_checked_at = now(),"
                "  last_ok_at = coalesce(excluded.last_ok_at, c.last_ok_at),"
                "  consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE c.consecutive_failures + 1 END,"
                "  drift_items = c.drift_items + excluded.drift_items",
                {"tid": tid, "ch": o.channel, "st": o.status, "err": (o.error or None) and o.error[:1000],
                 "http": o.http_status, "n": o.item_count, "ok": ok, "drift": o.drift_items},
            )
        conn.execute(
            "UPDATE sources SET active_channel = %(active)s,"
            " checks_since_cross_check = CASE WHEN %(cross)s THEN 0 ELSE checks_since_cross_check + 1 END,"
            " last_cross_check_at = CASE WHEN %(cross)s THEN now() ELSE last_cross_check_at END"
            " WHERE tid = %(tid)s",
            {"active": active_channel, "cross": cross_checked, "tid": tid},
        )


def channels_of(conn: psycopg.Connection[Any], tid: str) -> list[dict[str, Any]]:
    """The channel rows of one source."""
    return conn.execute(
        "SELECT channel, last_status, last_error, last_http_status, last_item_count, last_checked_at,"
        " last_ok_at, consecutive_failures, drift_items FROM source_channels WHERE tid = %s ORDER BY channel",
        (tid,),
    ).fetchall()


def record_gap(conn: psycopg.Connection[Any], tid: str, *, pages_walked: int, items_found: int,
               oldest_seen_at: datetime | None, reason: str) -> None:
    """Record a gap that paging back could not close."""
    conn.execute(
        "INSERT INTO source_gaps (tid, pages_walked, items_found, oldest_seen_at, reason)"
        " VALUES (%s, %s, %s, %s, %s)",
        (tid, pages_walked, items_found, oldest_seen_at, reason[:1000]),
    )


def close_gaps(conn: psycopg.Connection[Any], tid: str) -> int:
    """Mark a source's open gaps closed (a backfill walked its history); the number closed."""
    return conn.execute(
        "UPDATE source_gaps SET closed_at = now() WHERE tid = %s AND closed_at IS NULL", (tid,)
    ).rowcount


def open_gaps(conn: psycopg.Connection[Any], limit: int = 20) -> list[dict[str, Any]]:
    """Gaps not closed yet, newest first."""
    return conn.execute(
        "SELECT id, tid, detected_at, pages_walked, items_found, oldest_seen_at, reason FROM source_gaps"
        " WHERE closed_at IS NULL ORDER BY detected_at DESC LIMIT %s",
        (limit,),
    ).fetchall()
