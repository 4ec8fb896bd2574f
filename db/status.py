"""SQL for the at-a-glance view of the service: ``haowatch status``, ``/metrics`` and ``/healthz``."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow


def overview(conn: Connection[DictRow]) -> dict[str, Any]:
    """Sources by state, the schedule backlog, crawl totals, the last crawl, article counts."""
    sources = conn.execute(
        "SELECT count(*) AS total,"
        " count(*) FILTER (WHERE enabled) AS enabled,"
        " count(*) FILTER (WHERE NOT enabled) AS paused,"
        " count(*) FILTER (WHERE enabled AND next_check_at <= now()) AS due,"
        " count(*) FILTER (WHERE enabled AND consecutive_failures > 0) AS failing,"
        " count(*) FILTER (WHERE claimed_until > now()) AS claimed,"
        # Clamped: SQL may write '-infinity' or far-off dates, which must not break status or /metrics.
        " coalesce(extract(epoch FROM now() - greatest(min(next_check_at) FILTER (WHERE enabled AND"
        "   next_check_at <= now()), timestamptz '1970-01-01 00:00+00')), 0)::float AS oldest_due_seconds,"
        " extract(epoch FROM least(greatest(max(last_success_at), timestamptz '1970-01-01 00:00+00'), now()))::float"
        "   AS last_success_ts"
        " FROM sources"
    ).fetchone()
    by_status = {
        r["status"]: r["n"]
        for r in conn.execute(
            "SELECT coalesce(last_status, 'never_checked') AS status, count(*) AS n FROM sources"
            " WHERE enabled GROUP BY 1 ORDER BY 1"
        )
    }
    attention = conn.execute(
        "SELECT tid, name, last_status, last_error, consecutive_failures,"
        " least(greatest(last_checked_at, timestamptz '1970-01-01 00:00+00'), now()) AS last_checked_at FROM sources"
        " WHERE enabled AND (last_status IN ('empty', 'parse_failed', 'not_found', 'http_error', 'error',"
        "   'degraded', 'blocked'))"
        " ORDER BY consecutive_failures DESC, tid LIMIT 20"
    ).fetchall()
    crawls = conn.execute(
        "SELECT count(*) AS crawls, coalesce(sum(requests), 0) AS requests,"
        " coalesce(sum(new_articles), 0) AS new_articles, coalesce(sum(updated_articles), 0) AS updated_articles,"
        " coalesce(sum(deleted_articles), 0) AS deleted_articles, coalesce(sum(errors), 0) AS errors,"
        " count(*) FILTER (WHERE status = 'aborted') AS aborted"
        " FROM crawl_runs"
    ).fetchone()
    last_crawl = conn.execute(
        "SELECT id, kind, status, started_at, finished_at, cardinality(sources) AS sources, requests,"
        " new_articles, updated_articles, deleted_articles, errors"
        " FROM crawl_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    articles = conn.execute(
        "SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS live,"
        " count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted,"
        " count(*) FILTER (WHERE first_seen_at >= date_trunc('day', now())) AS today,"
        " (SELECT count(*) FROM article_revisions) AS revisions"
        " FROM articles"
    ).fetchone()
    gaps = conn.execute(
        "SELECT g.tid, s.name, count(*) AS gaps, max(g.detected_at) AS last_detected_at,"
        " (array_agg(g.reason ORDER BY g.detected_at DESC))[1] AS reason"
        " FROM source_gaps g LEFT JOIN sources s ON s.tid = g.tid WHERE g.closed_at IS NULL"
        " GROUP BY g.tid, s.name ORDER BY max(g.detected_at) DESC LIMIT 20"
    ).fetchall()
    captured = {
        r["reason"]: r["n"]
        for r in conn.execute("SELECT reason, count(*) AS n FROM captured_pages GROUP BY 1 ORDER BY 1")
    }
    return {
        "gaps": gaps,
        "captured_pages": captured,
        "sources": sources,
        "sources_by_status": by_status,
        "attention": attention,
        "crawls": crawls,
        "last_crawl": last_crawl,
        "articles": articles,
    }


def ping(conn: Connection[DictRow]) -> bool:
    """True when the server answers a trivial query."""
    row = conn.execute("SELECT 1 AS one").fetchone()
    return row is not None and row["one"] == 1


def limit_statement_time(conn: Connection[DictRow], seconds: int) -> None:
    """Make every later statement on ``conn`` give up after ``seconds`` (a health check must answer fast)."""
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{int(seconds)}s",))
