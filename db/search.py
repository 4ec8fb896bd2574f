"""Full-text search over article titles and bodies (``search_articles``: migrations 005 and 010)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection
from psycopg.rows import DictRow

DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One article found by :func:`search_articles`."""

    docid: str
    title: str | None
    published_at: datetime | None
    source_tid: str | None
    rank: float
    snippet: str


def search_articles(conn: Connection[DictRow], query: str, *, limit: int = DEFAULT_LIMIT,
                    source_tid: str | None = None, since: datetime | None = None) -> list[SearchHit]:
    """Articles whose title or body contains ``query``, best first (the SQL function of the same name).

    The candidates are the newest ``max(limit, 50)`` articles containing it (by ``published_at``),
    ordered by rank; so ``limit`` hits come back whenever that many articles contain the query.
    """
    rows = conn.execute(
        "SELECT docid, title, published_at, source_tid, rank, snippet FROM search_articles(%s, %s, %s, %s)",
        (query, limit, source_tid, since),
    ).fetchall()
    return [SearchHit(**row) for row in rows]


def search_terms(conn: Connection[DictRow], text: str) -> list[str]:
    """The search terms SQL makes of ``text`` (what the index holds for it)."""
    row = conn.execute("SELECT haowatch_search_terms(%s) AS terms", (text,)).fetchone()
    return list(row["terms"]) if row else []
