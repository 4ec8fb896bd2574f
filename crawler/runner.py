"""Run a crawl in this process: a one-shot crawl (``crawl``, ``refetch``, ``backfill``, each recorded
as a ``crawl_runs`` row) or the service's continuous worker (``haowatch worker``).

A Twisted reactor cannot be restarted, so each runs in its own process.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from loguru import logger
from scrapy.crawler import CrawlerProcess

from crawler.settings import CrawlOptions, scrapy_settings
from crawler.spiders.hao import HaoSpider
from db import runs as runs_db
from db import sources as sources_db
from db.connection import connect


@dataclass
class CrawlSummary:
    """The counts printed after a crawl and stored in ``crawl_runs``."""

    kind: str
    run_id: int | None = None
    sources: int = 0
    requests: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    errors: int = 0
    ran: bool = True  # False when the crawl was interrupted before it finished
    stats: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary: sources, requests, new, updated, deleted, errors."""
        run = f" #{self.run_id}" if self.run_id else ""
        return (
            f"{self.kind}{run}: {self.sources} sources, {self.requests} requests, {self.new} new,"
            f" {self.updated} updated, {self.deleted} deleted, {self.errors} errors"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def _execute(options: CrawlOptions, database_url: str, kind: str, source_tids: list[str],
             spider_kwargs: dict[str, Any]) -> CrawlSummary:
    with connect(database_url) as conn:
        run_id = runs_db.start_run(conn, kind, source_tids)
    process = CrawlerProcess(scrapy_settings(options, database_url))
    crawler = process.create_crawler(HaoSpider)
    process.crawl(crawler, **spider_kwargs)
    status = "ok"
    try:
        process.start()
    except KeyboardInterrupt:
        status = "aborted"
    stats = {k: _plain(v) for k, v in (crawler.stats.get_stats() if crawler.stats else {}).items()}
    if stats.get("finish_reason") not in (None, "finished"):
        status = "aborted"

    def count(key: str) -> int:
        return int(stats.get(f"haowatch/{key}", 0) or 0)

    summary = CrawlSummary(
        kind=kind,
        run_id=run_id,
        ran=status == "ok",
        sources=len(source_tids),
        requests=int(stats.get("downloader/request_count", 0) or 0),
        new=count("new_articles"),
        updated=count("updated_articles"),
        deleted=count("deleted_articles"),
        errors=count("errors") + count("source_errors") + int(stats.get("spider_exceptions/count", 0) or 0),
        stats=stats,
    )
    with connect(database_url) as conn:
        runs_db.finish_run(
            conn, run_id, status=status, requests=summary.requests, new_articles=summary.new,
            updated_articles=summary.updated, deleted_articles=summary.deleted, errors=summary.errors,
            stats=stats,
        )
    logger.info(summary.line())
    return summary


def run_crawl(options: CrawlOptions, database_url: str, tids: list[str] | None = None) -> CrawlSummary:
    """Check the given sources (default: every enabled one) and fetch their new articles."""
    with connect(database_url) as conn:
        sources = sources_db.due_sources(conn, tids)
    if not sources:
        return CrawlSummary(kind="crawl")
    return _execute(options, database_url, "crawl", [s.tid for s in sources],
                    {"mode": "watch", "sources": sources})


def run_refetch(options: CrawlOptions, database_url: str, docids: list[str]) -> CrawlSummary:
    """Download the given articles again: a revision when changed, deleted when gone."""
    if not docids:
        return CrawlSummary(kind="refetch")
    return _execute(options, database_url, "refetch", [], {"mode": "refetch", "docids": docids})


def run_backfill(options: CrawlOptions, database_url: str, tid: str, pages: int) -> CrawlSummary:
    """Walk an account's older history through the list API, fetching articles not yet stored."""
    with connect(database_url) as conn:
        sources = sources_db.due_sources(conn, [tid])
    return _execute(options, database_url, "backfill", [tid],
                    {"mode": "backfill", "sources": sources, "backfill_pages": pages})


# Why a worker may stop and still count as a clean exit (anything else is a failure to report).
CLEAN_WORKER_EXITS = ("shutdown", "parent gone")


def run_worker(options: CrawlOptions, database_url: str, *, owner: str, parent_pid: int | None = None,
               sources_per_claim: int = 200) -> str:
    """Run one continuous crawl worker until it is stopped or recycled; return why it closed.

    Its spider keeps taking due work (account checks, pending articles, revisits) from the database
    through one downloader; see :mod:`crawler.feed`.
    """
    options = replace(options, worker_owner=owner)
    process = CrawlerProcess(scrapy_settings(options, database_url))
    crawler = process.create_crawler(HaoSpider)
    process.crawl(crawler, mode="worker", parent_pid=parent_pid, sources_per_claim=sources_per_claim)
    try:
        process.start()
    except KeyboardInterrupt:
        return "shutdown"
    reason = crawler.stats.get_value("finish_reason") if crawler.stats else None
    return str(reason or "unknown")
