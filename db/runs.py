"""SQL for ``crawl_runs``: one row per crawl, written at its start and completed at its end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb


def start_run(conn: Connection[DictRow], kind: str, sources: Sequence[str]) -> int:
    """Open a crawl_runs row (status ``running``) and return its id."""
    row = conn.execute(
        "INSERT INTO crawl_runs (kind, sources) VALUES (%s, %s) RETURNING id", (kind, list(sources))
    ).fetchone()
    assert row is not None
    return int(row["id"])


def finish_run(conn: Connection[DictRow], run_id: int, *, status: str, requests: int, new_articles: int,
               updated_articles: int, deleted_articles: int, errors: int, stats: dict[str, Any]) -> None:
    """Close a crawl_runs row with its counts and the full Scrapy stats."""
    conn.execute(
        "UPDATE crawl_runs SET finished_at = now(), status = %s, requests = %s, new_articles = %s,"
        " updated_articles = %s, deleted_articles = %s, errors = %s, stats = %s WHERE id = %s",
        (status, requests, new_articles, updated_articles, deleted_articles, errors, Jsonb(stats), run_id),
    )


def abandon_stale_runs(conn: Connection[DictRow], older_than_seconds: int) -> int:
    """Mark runs that never finished (their process was killed) as ``aborted``; return how many."""
    rows = conn.execute(
        "UPDATE crawl_runs SET status = 'aborted', finished_at = now() WHERE finished_at IS NULL"
        " AND started_at < now() - make_interval(secs => %s) RETURNING id",
        (older_than_seconds,),
    ).fetchall()
    return len(rows)


def sources_succeeded(conn: Connection[DictRow], run_id: int) -> int:
    """How many of a crawl run's sources were checked successfully since the run started."""
    row = conn.execute(
        "SELECT count(*) AS n FROM crawl_runs r JOIN sources s ON s.tid = ANY(r.sources)"
        " WHERE r.id = %s AND s.last_success_at >= r.started_at",
        (run_id,),
    ).fetchone()
    return int(row["n"] if isinstance(row, dict) else row[0]) if row else 0
