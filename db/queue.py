"""SQL of the crawl worker's queue: due sources, pending articles and revisits, taken with short leases.

A worker *claims* work (``FOR UPDATE SKIP LOCKED``, so replicas take disjoint sets), renews the
leases of what it still has in flight by heartbeat, and lets go of a claim when the work is done
(the check or the article is recorded) or when it stops. A worker that dies stops renewing: its
leases run out and any replica takes the work again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection
from psycopg.rows import DictRow, class_row

from db.records import CrawlSource
from db.sources import MAX_FAILURES


@dataclass(frozen=True, slots=True)
class QueuedArticle:
    """An article the worker should fetch: listed and not stored yet, or due for a revisit."""

    docid: str
    source_tid: str | None
    title: str | None


@dataclass(frozen=True, slots=True)
class WorkerCheck:
    """One account check a worker recorded (for the service's health)."""

    checked_at: datetime
    ok: bool


def claim_sources(conn: Connection[DictRow], owner: str, limit: int, lease_seconds: int) -> list[CrawlSource]:
    """Claim up to ``limit`` due sources for ``owner``, most overdue first."""
    with conn.cursor(row_factory=class_row(CrawlSource)) as cur:
        return cur.execute(
            "UPDATE sources SET claimed_by = %s, claimed_until = now() + make_interval(secs => %s)"
            " WHERE tid IN (SELECT tid FROM sources WHERE enabled AND next_check_at <= now()"
            "   AND (claimed_until IS NULL OR claimed_until < now())"
            "   ORDER BY next_check_at LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING tid, name, wemedia_id",
            (owner, lease_seconds, limit),
        ).fetchall()


def claim_pending_articles(conn: Connection[DictRow], owner: str, limit: int, lease_seconds: int,
                           max_failures: int) -> list[QueuedArticle]:
    """Claim listed articles not stored yet whose wait is over (a killed crawl's, or failed ones)."""
    with conn.cursor(row_factory=class_row(QueuedArticle)) as cur:
        return cur.execute(
            "UPDATE listed_items SET claimed_by = %s, fetch_after = now() + make_interval(secs => %s)"
            " WHERE item_id IN (SELECT item_id FROM listed_items WHERE pending"
            "   AND (fetch_after IS NULL OR fetch_after <= now()) AND fetch_failures < %s"
            "   ORDER BY fetch_after NULLS FIRST, first_listed_at LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING item_id AS docid, source_tid, title",
            (owner, lease_seconds, max_failures, limit),
        ).fetchall()


def claim_listed(conn: Connection[DictRow], owner: str, docids: Sequence[str], lease_seconds: int) -> list[str]:
    """Of ``docids`` (a check found them missing), those this worker may fetch now, in order.

    A docid not listed yet (its listing is being stored) is this check's to fetch; a listed one is
    claimed unless another worker holds a live lease on it.
    """
    if not docids:
        return []
    rows = conn.execute(
        "WITH claimed AS ("
        "  UPDATE listed_items SET claimed_by = %(owner)s, fetch_after = now() + make_interval(secs => %(lease)s)"
        "  WHERE item_id IN (SELECT item_id FROM listed_items WHERE item_id = ANY(%(ids)s)"
        "    AND (claimed_by IS NULL OR claimed_by = %(owner)s OR fetch_after IS NULL OR fetch_after <= now())"
        "    FOR UPDATE SKIP LOCKED)"
        "  RETURNING item_id)"
        " SELECT d AS docid FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS l(d, n)"
        " WHERE d IN (SELECT item_id FROM claimed)"
        "    OR NOT EXISTS (SELECT 1 FROM listed_items li WHERE li.item_id = l.d)"
        " ORDER BY n",
        {"owner": owner, "lease": lease_seconds, "ids": list(docids)},
    ).fetchall()
    return [r["docid"] for r in rows]


def claim_revisits(conn: Connection[DictRow], limit: int, retry_seconds: int) -> list[QueuedArticle]:
    """Take up to ``limit`` live articles whose revisit is due; each is put off by ``retry_seconds``
    at once, so a revisit that fails (or whose worker dies) is tried again later, not in a loop.
    Storing the revisited article sets its next revisit."""
    with conn.cursor(row_factory=class_row(QueuedArticle)) as cur:
        return cur.execute(
            "UPDATE articles SET next_revisit_at = now() + make_interval(secs => %s)"
            " WHERE docid IN (SELECT docid FROM articles WHERE next_revisit_at <= now() AND deleted_at IS NULL"
            "   ORDER BY next_revisit_at LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING docid, source_tid, title",
            (retry_seconds, limit),
        ).fetchall()


def seconds_until_due(conn: Connection[DictRow], max_failures: int) -> float | None:
    """Seconds until the next source, pending article or revisit falls due (0 when one is due now),
    or None when nothing is scheduled."""
    row = conn.execute(
        "SELECT extract(epoch FROM least("
        "  (SELECT min(greatest(next_check_at, coalesce(claimed_until, next_check_at))) FROM sources WHERE enabled),"
        "  (SELECT min(coalesce(fetch_after, now())) FROM listed_items WHERE pending AND fetch_failures < %s),"
        "  (SELECT min(next_revisit_at) FROM articles WHERE next_revisit_at IS NOT NULL AND deleted_at IS NULL)"
        ") - now())::float8 AS wait",
        (max_failures,),
    ).fetchone()
    if row is None or row["wait"] is None:
        return None
    return max(0.0, float(row["wait"]))


def renew(conn: Connection[DictRow], owner: str, tids: Sequence[str], docids: Sequence[str],
          lease_seconds: int) -> None:
    """Extend the leases ``owner`` holds on work still in flight (the heartbeat)."""
    with conn.transaction():
        if tids:
            conn.execute(
                "UPDATE sources SET claimed_until = now() + make_interval(secs => %s)"
                " WHERE tid = ANY(%s) AND claimed_by = %s",
                (lease_seconds, list(tids), owner),
            )
        if docids:
            conn.execute(
                "UPDATE listed_items SET fetch_after = now() + make_interval(secs => %s)"
                " WHERE item_id = ANY(%s) AND claimed_by = %s AND pending",
                (lease_seconds, list(docids), owner),
            )


def give_up_sources(conn: Connection[DictRow], owner: str, tids: Sequence[str], error: str,
                    retry_seconds: int) -> None:
    """Release sources whose check never finished (a bug, a lost request): each counts a failure and
    is tried again after ``retry_seconds``, so one bad source cannot hot-loop."""
    conn.execute(
        "UPDATE sources SET claimed_by = NULL, claimed_until = NULL, last_status = 'error', last_error = %s,"
        f" consecutive_failures = least(greatest(consecutive_failures, 0), {MAX_FAILURES}) + 1,"
        " next_check_at = greatest(next_check_at, now() + make_interval(secs => %s))"
        " WHERE tid = ANY(%s) AND claimed_by = %s",
        (error[:1000], retry_seconds, list(tids), owner),
    )


def release_owner(conn: Connection[DictRow], owner: str) -> int:
    """Let go of everything ``owner`` holds (it stopped or died): its sources stay as due as they were,
    its pending articles can be taken at once. Returns how many claims were released."""
    with conn.transaction():
        sources = conn.execute(
            "UPDATE sources SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = %s RETURNING tid",
            (owner,),
        ).fetchall()
        articles = conn.execute(
            "UPDATE listed_items SET claimed_by = NULL, fetch_after = NULL WHERE claimed_by = %s AND pending"
            " RETURNING item_id",
            (owner,),
        ).fetchall()
        conn.execute("UPDATE listed_items SET claimed_by = NULL WHERE claimed_by = %s", (owner,))
    return len(sources) + len(articles)


def checks_by(conn: Connection[DictRow], owner_prefix: str, since: datetime) -> list[WorkerCheck]:
    """Checks made since ``since`` by workers whose owner name starts with ``owner_prefix``, oldest first."""
    with conn.cursor(row_factory=class_row(WorkerCheck)) as cur:
        return cur.execute(
            "SELECT last_checked_at AS checked_at, last_success_at IS NOT DISTINCT FROM last_checked_at AS ok"
            " FROM sources WHERE last_checked_at > %s AND left(last_checked_by, length(%s)) = %s"
            " ORDER BY last_checked_at",
            (since, owner_prefix, owner_prefix),
        ).fetchall()


def overdue_sources(conn: Connection[DictRow], grace_seconds: int) -> int:
    """Enabled sources whose check is more than ``grace_seconds`` late (claimed or not)."""
    row = conn.execute(
        "SELECT count(*) AS n FROM sources WHERE enabled AND next_check_at < now() - make_interval(secs => %s)",
        (grace_seconds,),
    ).fetchone()
    return int(row["n"]) if row else 0
