"""SQL for ``captured_pages``: raw responses kept as evidence, gzip-compressed and bounded."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

REASONS = ("unexpected", "parse_failed", "blocked")


@dataclass(frozen=True, slots=True)
class CapturedPage:
    """One kept response (the body decompressed)."""

    id: int
    captured_at: datetime
    url: str
    status: int | None
    headers: dict[str, str]
    reason: str
    page_type: str
    detail: str | None
    source_tid: str | None
    body: bytes


def capture(conn: psycopg.Connection[Any], *, url: str, status: int | None, headers: dict[str, str], reason: str,
            page_type: str, detail: str | None, source_tid: str | None, body: bytes, per_reason: int,
            max_age_seconds: int) -> int | None:
    """Keep one response; then drop the oldest beyond ``per_reason`` for its reason and all older than
    ``max_age_seconds``. One transaction. Returns the new id (None when keeping is off)."""
    if per_reason <= 0:
        return None
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO captured_pages (url, status, headers, reason, page_type, detail, source_tid,"
            " body_size, body_gzip) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (url[:2000], status, Jsonb(headers), reason, page_type, (detail or None) and detail[:1000],
             source_tid, len(body), gzip.compress(body, 6)),
        ).fetchone()
        conn.execute(
            "DELETE FROM captured_pages WHERE reason = %s AND id NOT IN"
            " (SELECT id FROM captured_pages WHERE reason = %s ORDER BY captured_at DESC, id DESC LIMIT %s)",
            (reason, reason, per_reason),
        )
        conn.execute("DELETE FROM captured_pages WHERE captured_at < now() - make_interval(secs => %s)",
                     (max_age_seconds,))
    return int(row["id"]) if row else None


def list_captured(conn: psycopg.Connection[Any], reason: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Kept responses without their bodies, newest first."""
    return conn.execute(
        "SELECT id, captured_at, url, status, reason, page_type, detail, source_tid, body_size,"
        " octet_length(body_gzip) AS stored_size FROM captured_pages"
        " WHERE %(reason)s::text IS NULL OR reason = %(reason)s ORDER BY captured_at DESC, id DESC LIMIT %(limit)s",
        {"reason": reason, "limit": limit},
    ).fetchall()


def load_captured(conn: psycopg.Connection[Any], ids: list[int] | None = None, reason: str | None = None,
                  limit: int = 1000) -> list[CapturedPage]:
    """Kept responses with their bodies: the given ids, or the newest (of one reason)."""
    rows = conn.execute(
        "SELECT id, captured_at, url, status, headers, reason, page_type, detail, source_tid, body_gzip"
        " FROM captured_pages WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))"
        " AND (%(reason)s::text IS NULL OR reason = %(reason)s)"
        " ORDER BY captured_at DESC, id DESC LIMIT %(limit)s",
        {"ids": ids, "reason": reason, "limit": limit},
    ).fetchall()
    return [
        CapturedPage(r["id"], r["captured_at"], r["url"], r["status"], dict(r["headers"] or {}), r["reason"],
                     r["page_type"], r["detail"], r["source_tid"], gzip.decompress(r["body_gzip"]))
        for r in rows
    ]
