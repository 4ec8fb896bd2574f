"""SQL for the ``sources`` table: watched accounts, their schedule and their health."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow, class_row

from db.records import CrawlSource, SourceProblem

# Timestamps a program can hold: SQL may write 'infinity' or year 200000, which Python cannot load.
_EARLIEST, _LATEST = "timestamptz '1900-01-01 00:00+00'", "timestamptz '9000-01-01 00:00+00'"
# Failure counts are capped well below integer overflow (a counter of 2147483647 + 1 would raise).
MAX_FAILURES = 1_000_000


def _clamped(column: str) -> str:
    return f"least(greatest({column}, {_EARLIEST}), {_LATEST}) AS {column}"


SOURCE_COLUMNS = (
    "tid, name, wemedia_id,"
    " least(greatest(extract(epoch FROM interval), 0), 1e12)::bigint AS interval_seconds, enabled,"
    f" {_clamped('added_at')}, {_clamped('next_check_at')}, {_clamped('last_checked_at')},"
    f" {_clamped('last_success_at')}, last_status, last_error, consecutive_failures,"
    f" last_item_count, claimed_by, {_clamped('claimed_until')}"
)
_NEXT_FAILURES = f"least(greatest(consecutive_failures, 0), {MAX_FAILURES}) + 1"


def add_source(conn: Connection[DictRow], tid: str, interval_seconds: int, name: str | None = None) -> bool:
    """Add a source; return False (and change nothing) when it already exists."""
    row = conn.execute(
        "INSERT INTO sources (tid, name, interval) VALUES (%s, %s, %s) ON CONFLICT (tid) DO NOTHING RETURNING tid",
        (tid, name, timedelta(seconds=interval_seconds)),
    ).fetchone()
    return row is not None


def source_exists(conn: Connection[DictRow], tid: str) -> bool:
    """Whether ``tid`` is watched (reads the key alone, so any value in the rest of the row is fine)."""
    return conn.execute("SELECT 1 FROM sources WHERE tid = %s", (tid,)).fetchone() is not None


def get_source(conn: Connection[DictRow], tid: str) -> dict[str, Any] | None:
    """One source as a dict, or None."""
    return conn.execute(f"SELECT {SOURCE_COLUMNS} FROM sources WHERE tid = %s", (tid,)).fetchone()


def list_sources(conn: Connection[DictRow]) -> list[dict[str, Any]]:
    """Every source, in the order they were added."""
    return conn.execute(f"SELECT {SOURCE_COLUMNS} FROM sources ORDER BY added_at, tid").fetchall()


def remove_source(conn: Connection[DictRow], tid: str) -> bool:
    """Stop watching a source. Its articles, links and history stay."""
    return conn.execute("DELETE FROM sources WHERE tid = %s RETURNING tid", (tid,)).fetchone() is not None


def set_enabled(conn: Connection[DictRow], tid: str, enabled: bool) -> bool:
    """Pause or resume a source; a resumed source is due at once."""
    row = conn.execute(
        "UPDATE sources SET enabled = %s,"
        " next_check_at = CASE WHEN %s THEN least(next_check_at, now()) ELSE next_check_at END"
        " WHERE tid = %s RETURNING tid",
        (enabled, enabled, tid),
    ).fetchone()
    return row is not None


def set_interval(conn: Connection[DictRow], tid: str, interval_seconds: int) -> bool:
    """Change how often a source is checked; the next check moves accordingly."""
    row = conn.execute(
        "UPDATE sources SET interval = %s,"
        " next_check_at = least(next_check_at, least(coalesce(last_checked_at, now()), now()) + %s)"
        " WHERE tid = %s RETURNING tid",
        (timedelta(seconds=interval_seconds), timedelta(seconds=interval_seconds), tid),
    ).fetchone()
    return row is not None


def set_account_facts(conn: Connection[DictRow], tid: str, name: str | None, wemedia_id: str | None) -> None:
    """Fill in the account name and W-id learnt from pages, never overwriting a user's name with nothing."""
    conn.execute(
        "UPDATE sources SET name = coalesce(name, %s), wemedia_id = coalesce(%s, wemedia_id) WHERE tid = %s",
        (name, wemedia_id, tid),
    )


def due_sources(conn: Connection[DictRow], tids: list[str] | None = None) -> list[CrawlSource]:
    """The given sources, or every enabled one, with what a crawl needs to know about them."""
    with conn.cursor(row_factory=class_row(CrawlSource)) as cur:
        if tids:
            return cur.execute(
                "SELECT tid, name, wemedia_id FROM sources WHERE tid = ANY(%s) ORDER BY tid", (tids,)
            ).fetchall()
        return cur.execute("SELECT tid, name, wemedia_id FROM sources WHERE enabled ORDER BY tid").fetchall()


def sources_needing_attention(conn: Connection[DictRow], tids: Sequence[str]) -> list[SourceProblem]:
    """Those of ``tids`` whose last check found the feed empty or not understood (a silently broken feed)."""
    with conn.cursor(row_factory=class_row(SourceProblem)) as cur:
        return cur.execute(
            "SELECT tid, name, last_status, last_error FROM sources"
            " WHERE tid = ANY(%s) AND last_status IN ('empty', 'parse_failed') ORDER BY tid",
            (list(tids),),
        ).fetchall()


def record_check(conn: Connection[DictRow], tid: str, *, ok: bool, status: str, error: str | None,
                 item_count: int | None, max_backoff_seconds: int, checked_by: str | None = None) -> None:
    """Record the outcome of checking a source and schedule its next check.

    Success: next check after one interval (plus up to 5 % jitter, so sources added together drift
    apart). Failure: the delay doubles with each consecutive failure, capped at ``max_backoff_seconds``.
    ``checked_by`` (the crawl worker) is recorded, and its claim on the source ends here: the next
    check is scheduled, so nothing can take the source early.
    """
    conn.execute(
        "UPDATE sources SET last_checked_at = now(), last_status = %(status)s, last_error = %(error)s,"
        " last_checked_by = %(by)s,"
        " claimed_until = CASE WHEN claimed_by = %(by)s THEN NULL ELSE claimed_until END,"
        " claimed_by = CASE WHEN claimed_by = %(by)s THEN NULL ELSE claimed_by END,"
        " last_item_count = coalesce(%(items)s, last_item_count),"
        " last_success_at = CASE WHEN %(ok)s THEN now() ELSE last_success_at END,"
        f" consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE {_NEXT_FAILURES} END,"
        " next_check_at = now() + CASE WHEN %(ok)s THEN interval * (1 + random() * 0.05)"
        "   ELSE least(interval * power(2, least(greatest(consecutive_failures, 0), 20)),"
        "              make_interval(secs => %(cap)s)) * (1 + random() * 0.05) END"
        " WHERE tid = %(tid)s",
        {"status": status, "error": (error or None) and error[:1000], "items": item_count, "ok": ok,
         "cap": max_backoff_seconds, "tid": tid, "by": checked_by},
    )


def mark_unusable(conn: Connection[DictRow], tid: str, error: str, retry_seconds: int = 3600) -> None:
    """Mark one source ``error`` when its row could not be used (a value the checks could not
    handle), touching only columns that cannot fail, so the rest of its batch goes on."""
    conn.execute(
        "UPDATE sources SET last_status = 'error', last_error = %s, last_checked_at = now(),"
        f" consecutive_failures = {_NEXT_FAILURES},"
        " next_check_at = now() + make_interval(secs => %s), claimed_by = NULL, claimed_until = NULL"
        " WHERE tid = %s",
        (error[:1000], retry_seconds, tid),
    )


def release_claim(conn: Connection[DictRow], tid: str) -> str | None:
    """Release whatever claim holds ``tid`` (a replica died or hung); return the former owner.

    Returns None when the source exists but was not claimed; raises LookupError when it does not exist.
    """
    row = conn.execute(
        "UPDATE sources s SET claimed_by = NULL, claimed_until = NULL FROM"
        " (SELECT tid, claimed_by AS owner FROM sources WHERE tid = %s FOR UPDATE) old"
        " WHERE s.tid = old.tid RETURNING old.owner",
        (tid,),
    ).fetchone()
    if row is None:
        raise LookupError(tid)
    return row["owner"]


SOURCE_CHANGES_CHANNEL = "haowatch_sources"


def listen_for_changes(conn: Connection[DictRow]) -> None:
    """Subscribe ``conn`` to the notifications a trigger sends when sources are added or changed."""
    conn.execute(f"LISTEN {SOURCE_CHANGES_CHANNEL}")
