"""SQL for the events outbox: subscriptions, their deliveries, and what a message needs to say.

Events are written by triggers (migration 007) in the transaction of the change itself; this module
only reads them and moves deliveries along: claim, delivered, retry later, dead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

EVENT_KINDS = ("new", "edited", "deleted", "restored", "failing", "recovered")


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where events go and which ones."""

    id: int
    url: str
    events: tuple[str, ...]
    source_tid: str | None
    keyword: str | None
    enabled: bool
    created_at: datetime
    pending: int = 0
    delivered: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One event row."""

    id: int
    kind: str
    created_at: datetime
    source_tid: str | None
    docid: str | None
    title: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed delivery: the event, where it goes, and how many attempts it has had (this one included)."""

    event: Event
    subscription_id: int
    url: str
    attempts: int


def _event(row: dict[str, Any], prefix: str = "") -> Event:
    return Event(
        id=int(row[prefix + "id"]), kind=row[prefix + "kind"], created_at=row[prefix + "created_at"],
        source_tid=row[prefix + "source_tid"], docid=row[prefix + "docid"], title=row[prefix + "title"],
        payload=dict(row[prefix + "payload"] or {}),
    )


# --- subscriptions ---------------------------------------------------------------------------------


def add_subscription(conn: psycopg.Connection[DictRow], url: str, events: Sequence[str], source_tid: str | None,
                     keyword: str | None) -> int:
    """Insert a subscription; return its id."""
    row = conn.execute(
        "INSERT INTO subscriptions (url, events, source_tid, keyword) VALUES (%s, %s, %s, %s) RETURNING id",
        (url, list(events), source_tid, keyword),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def list_subscriptions(conn: psycopg.Connection[DictRow]) -> list[Subscription]:
    """Every subscription with its delivery counts, oldest first."""
    rows = conn.execute(
        "SELECT s.id, s.url, s.events, s.source_tid, s.keyword, s.enabled, s.created_at,"
        " count(d.event_id) FILTER (WHERE d.delivered_at IS NULL AND d.dead_at IS NULL) AS pending,"
        " count(d.event_id) FILTER (WHERE d.delivered_at IS NOT NULL) AS delivered,"
        " count(d.event_id) FILTER (WHERE d.dead_at IS NOT NULL) AS dead"
        " FROM subscriptions s LEFT JOIN deliveries d ON d.subscription_id = s.id"
        " GROUP BY s.id ORDER BY s.id"
    ).fetchall()
    return [
        Subscription(int(r["id"]), r["url"], tuple(r["events"]), r["source_tid"], r["keyword"], r["enabled"],
                     r["created_at"], int(r["pending"]), int(r["delivered"]), int(r["dead"]))
        for r in rows
    ]


def get_subscription(conn: psycopg.Connection[DictRow], subscription_id: int) -> Subscription | None:
    """One subscription, or None."""
    for sub in list_subscriptions(conn):
        if sub.id == subscription_id:
            return sub
    return None


def remove_subscription(conn: psycopg.Connection[DictRow], subscription_id: int) -> bool:
    """Delete a subscription and its pending deliveries (its events stay)."""
    return conn.execute(
        "DELETE FROM subscriptions WHERE id = %s RETURNING id", (subscription_id,)
    ).fetchone() is not None


def queue_test_event(conn: psycopg.Connection[DictRow], subscription_id: int) -> int:
    """Write a ``test`` event delivered to one subscription only; return the event id."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO events (kind, title, payload) VALUES ('test', 'haowatch test notification', %s)"
            " RETURNING id",
            (Jsonb({"subscription": subscription_id}),),
        ).fetchone()
        assert row is not None
        event_id = int(row["id"])
        conn.execute("INSERT INTO deliveries (event_id, subscription_id) VALUES (%s, %s)",
                     (event_id, subscription_id))
        conn.execute("SELECT pg_notify('haowatch_events', %s)", (str(event_id),))
    return event_id


# --- deliveries ------------------------------------------------------------------------------------


def claim_deliveries(conn: psycopg.Connection[DictRow], limit: int, lease_seconds: float) -> list[Delivery]:
    """Claim up to ``limit`` due deliveries for ``lease_seconds``; other dispatchers skip them.

    The attempt is counted at claim time, so a dispatcher killed mid-send still uses up an attempt
    and its claim expires; the delivery is then sent again (at least once).
    """
    rows = conn.execute(
        "WITH due AS ("
        "  SELECT event_id, subscription_id FROM deliveries"
        "  WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()"
        "  AND (claimed_until IS NULL OR claimed_until < now())"
        "  ORDER BY next_attempt_at, event_id LIMIT %s FOR UPDATE SKIP LOCKED)"
        " UPDATE deliveries d SET attempts = d.attempts + 1,"
        "  claimed_until = now() + make_interval(secs => %s)"
        " FROM due, events e, subscriptions s"
        " WHERE d.event_id = due.event_id AND d.subscription_id = due.subscription_id"
        "  AND e.id = d.event_id AND s.id = d.subscription_id"
        " RETURNING d.attempts, d.subscription_id, s.url, e.id, e.kind, e.created_at, e.source_tid, e.docid,"
        "  e.title, e.payload",
        (limit, lease_seconds),
    ).fetchall()
    deliveries = [Delivery(_event(r), int(r["subscription_id"]), r["url"], int(r["attempts"])) for r in rows]
    deliveries.sort(key=lambda d: d.event.id)
    return deliveries


def claim_delivery(conn: psycopg.Connection[DictRow], event_id: int, subscription_id: int,
                   lease_seconds: float) -> Delivery | None:
    """Claim one given delivery (when nobody else holds it), as :func:`claim_deliveries` does."""
    row = conn.execute(
        "UPDATE deliveries d SET attempts = d.attempts + 1, claimed_until = now() + make_interval(secs => %s)"
        " FROM events e, subscriptions s"
        " WHERE d.event_id = %s AND d.subscription_id = %s AND e.id = d.event_id AND s.id = d.subscription_id"
        " AND d.delivered_at IS NULL AND d.dead_at IS NULL AND (d.claimed_until IS NULL OR d.claimed_until < now())"
        " RETURNING d.attempts, d.subscription_id, s.url, e.id, e.kind, e.created_at, e.source_tid, e.docid,"
        "  e.title, e.payload",
        (lease_seconds, event_id, subscription_id),
    ).fetchone()
    return Delivery(_event(row), int(row["subscription_id"]), row["url"], int(row["attempts"])) if row else None


def mark_delivered(conn: psycopg.Connection[DictRow], event_id: int, subscription_id: int) -> None:
    """Record a successful delivery."""
    conn.execute(
        "UPDATE deliveries SET delivered_at = now(), claimed_until = NULL, last_error = NULL"
        " WHERE event_id = %s AND subscription_id = %s",
        (event_id, subscription_id),
    )


def mark_failed(conn: psycopg.Connection[DictRow], event_id: int, subscription_id: int, error: str, *,
                retry_in_seconds: float, dead: bool) -> None:
    """Record a failed attempt: try again after ``retry_in_seconds``, or give up (dead letter)."""
    conn.execute(
        "UPDATE deliveries SET claimed_until = NULL, last_error = %s,"
        " next_attempt_at = now() + make_interval(secs => %s),"
        " dead_at = CASE WHEN %s THEN now() ELSE NULL END"
        " WHERE event_id = %s AND subscription_id = %s AND delivered_at IS NULL",
        (error[:1000], retry_in_seconds, dead, event_id, subscription_id),
    )


def next_due_in(conn: psycopg.Connection[DictRow]) -> float | None:
    """Seconds until the next pending delivery is due (0 when one is due now), or None when none is pending."""
    row = conn.execute(
        "SELECT extract(epoch FROM min(greatest(next_attempt_at, coalesce(claimed_until, next_attempt_at)))"
        " - now())::float AS wait FROM deliveries WHERE delivered_at IS NULL AND dead_at IS NULL"
    ).fetchone()
    if row is None or row["wait"] is None:
        return None
    return max(0.0, float(row["wait"]))


def delivery_counts(conn: psycopg.Connection[DictRow]) -> dict[str, int]:
    """Deliveries by state: pending, delivered, dead."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND dead_at IS NULL) AS pending,"
        " count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,"
        " count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead FROM deliveries"
    ).fetchone()
    assert row is not None
    return {k: int(v) for k, v in row.items()}


# --- events and revisions --------------------------------------------------------------------------


def recent_events(conn: psycopg.Connection[DictRow], kinds: Sequence[str], limit: int,
                  source_tid: str | None = None) -> list[Event]:
    """The newest events of the given kinds."""
    rows = conn.execute(
        "SELECT id, kind, created_at, source_tid, docid, title, payload FROM events"
        " WHERE kind = ANY(%s) AND (%s::text IS NULL OR source_tid = %s)"
        " ORDER BY created_at DESC, id DESC LIMIT %s",
        (list(kinds), source_tid, source_tid, limit),
    ).fetchall()
    return [_event(r) for r in rows]


def article_revision(conn: psycopg.Connection[DictRow], docid: str, revision: int) -> dict[str, Any] | None:
    """Title, text and HTML of one revision of an article (earlier ones from article_revisions)."""
    return conn.execute(
        "SELECT revision, title, body_text, body_html, replaced_at AS until FROM article_revisions"
        " WHERE docid = %s AND revision = %s"
        " UNION ALL"
        " SELECT revision, title, body_text, body_html, NULL FROM articles WHERE docid = %s AND revision = %s"
        " LIMIT 1",
        (docid, revision, docid, revision),
    ).fetchone()


def article_revision_numbers(conn: psycopg.Connection[DictRow], docid: str) -> list[int]:
    """Every revision number stored for an article, oldest first (empty when unknown)."""
    rows = conn.execute(
        "SELECT revision FROM article_revisions WHERE docid = %s"
        " UNION SELECT revision FROM articles WHERE docid = %s AND content_hash IS NOT NULL ORDER BY 1",
        (docid, docid),
    ).fetchall()
    return [int(r["revision"]) for r in rows]


def article_summary(conn: psycopg.Connection[DictRow], docid: str) -> dict[str, Any] | None:
    """What a message about an article shows: title, URL, account, times, the start of its text."""
    return conn.execute(
        "SELECT a.docid, a.source_tid, coalesce(s.name, a.account_name) AS account, a.title, a.url,"
        " a.published_at, a.first_seen_at, a.deleted_at, a.revision, left(a.body_text, 300) AS excerpt"
        " FROM articles a LEFT JOIN sources s ON s.tid = a.source_tid WHERE a.docid = %s",
        (docid,),
    ).fetchone()


def source_name(conn: psycopg.Connection[DictRow], tid: str) -> str | None:
    """The name of a watched source, when known."""
    row = conn.execute("SELECT name FROM sources WHERE tid = %s", (tid,)).fetchone()
    return row["name"] if row else None


EVENT_CHANNEL = "haowatch_events"


def listen_for_events(conn: psycopg.Connection[DictRow]) -> None:
    """Subscribe ``conn`` to the notification the events trigger sends with each new event."""
    conn.execute(f"LISTEN {EVENT_CHANNEL}")
