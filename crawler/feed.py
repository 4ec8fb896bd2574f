"""The work feed of a long-running crawl worker: due work from PostgreSQL into one Scrapy downloader.

The worker's spider never runs out of start requests: :meth:`WorkFeed.requests` keeps claiming due
account checks, pending articles and revisits while the downloader has room, and otherwise sleeps
until the next piece of work falls due (or a NOTIFY says sources changed). Everything a replica
fetches goes through one downloader, so per-host politeness holds across all of it.

Claims are short leases, renewed by a heartbeat while the work is in flight; work is *done* when
the item that records it (the check, the article, its failure) has been through the pipelines.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import scrapy
from loguru import logger
from psycopg import Connection
from psycopg.rows import DictRow
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider

from crawler.items import ArticleItem, FetchFailedItem, GoneItem, SourceCheckItem
from crawler.settings import CrawlOptions
from db import queue as queue_db
from db import runs as runs_db
from db import sources as sources_db
from db.connection import connect

Key = tuple[str, str]  # ("s", tid) for an account check, ("a", docid) for an article

# How long one piece of work may stay in flight before the worker stops vouching for it (its lease
# then lapses and the work is taken again): longer than any page's timeouts and retry waits.
MAX_IN_FLIGHT_SECONDS = 900
# The shortest sleep between two looks for due work, so sources falling due one by one are claimed a
# few at a time rather than one query each (scheduling lag stays well under a second).
MIN_WAIT_SECONDS = 0.5
# A worker's crawl_runs row covers this long; then its counts are written and a new row begins.
RUN_SEGMENT_SECONDS = 600


def work_key(item: Any) -> Key | None:
    """The piece of work an item completes, if any."""
    if isinstance(item, SourceCheckItem):
        return ("s", item.tid)
    if isinstance(item, ArticleItem):
        return ("a", item.page.docid)
    if isinstance(item, GoneItem | FetchFailedItem):
        return ("a", item.docid)
    return None


def resident_bytes() -> int:
    """This process's resident memory now (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class WorkFeed:
    """Claims due work for one worker and keeps track of what it has in flight."""

    def __init__(self, crawler: Crawler, options: CrawlOptions, database_url: str, *,
                 make_requests: Callable[[str, Any], scrapy.Request], parent_pid: int | None = None,
                 sources_per_claim: int = 200) -> None:
        assert options.worker_owner, "a work feed needs the worker's owner name"
        self.crawler = crawler
        self.options = options
        self.owner: str = options.worker_owner
        self.database_url = database_url
        self.make_request = make_requests
        self.parent_pid = parent_pid
        self.sources_per_claim = sources_per_claim
        self.capacity = max(8, 4 * options.concurrency * max(1, len(options.proxies)))
        self.inflight: dict[Key, float] = {}
        self.started = time.monotonic()
        self._articles_looked = -math.inf
        self.stop_reason: str | None = None
        self.draining: str | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Connection[DictRow] | None = None
        self._conn_lock = threading.Lock()
        self._closed = threading.Event()
        self._run_id: int | None = None
        self._run_started = time.monotonic()
        self._run_stats: dict[str, int] = {}
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self._item_done, signal=signal)
        crawler.signals.connect(self._spider_error, signal=signals.spider_error)
        crawler.signals.connect(self._closing, signal=signals.spider_closed)

    # --- in flight ------------------------------------------------------------------------------

    def take(self, key: Key) -> bool:
        """Register ``key`` as in flight; False when it already is (do not fetch it twice)."""
        if key in self.inflight:
            return False
        self.inflight[key] = time.monotonic()
        return True

    def done(self, key: Key) -> None:
        if self.inflight.pop(key, None) is not None and self._wake is not None:
            self._wake.set()

    def _item_done(self, item: Any, **_: Any) -> None:
        key = work_key(item)
        if key is not None:
            self.done(key)

    def _spider_error(self, failure: Any, response: Any, **_: Any) -> None:
        # A callback raised: whatever that page was for is not in flight any more (its lease lapses).
        request = getattr(response, "request", None)
        key = request.meta.get("work_key") if request is not None else None
        if key is not None:
            self.done(tuple(key))

    # --- the start requests -----------------------------------------------------------------------

    async def requests(self) -> AsyncIterator[scrapy.Request]:
        """Due work as requests, for as long as the worker runs."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await asyncio.to_thread(self._start_run)
        listener = threading.Thread(target=self._listen, name="haowatch-notify", daemon=True)
        listener.start()
        heartbeat = asyncio.ensure_future(self._heartbeat())
        try:
            while True:
                if self.stop_reason is not None:
                    raise CloseSpider(self.stop_reason)
                if self.draining is not None:
                    if not self.inflight:
                        raise CloseSpider(self.draining)
                    await self._sleep(1.0)
                    continue
                room = self.capacity - len(self.inflight)
                wait = self.options.poll_seconds
                if room > 0:
                    claimed = await asyncio.to_thread(self._claim, room)
                    for kind, work in claimed:
                        yield self.make_request(kind, work)
                    if len(claimed) >= room:
                        continue  # there may be more due: look again at once
                    hint = await asyncio.to_thread(self._seconds_until_due)
                    if hint is not None:
                        wait = min(wait, max(hint, MIN_WAIT_SECONDS))
                await self._sleep(wait)
        finally:
            heartbeat.cancel()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _wake_threadsafe(self) -> None:
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    # --- database (each call runs in a thread; one connection, used by one thread at a time) -----

    def _db(self) -> Connection[DictRow]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.database_url, application_name="haowatch-worker")
        return self._conn

    def _with_db(self, work: Callable[[Connection[DictRow]], Any], default: Any = None) -> Any:
        with self._conn_lock:
            try:
                return work(self._db())
            except psycopg.OperationalError as exc:
                # The database went away: nothing was claimed; the next round tries again.
                logger.warning("worker: database unavailable ({}); retrying", str(exc).splitlines()[0][:200])
                self._conn = None
                return default

    def _claim(self, room: int) -> list[tuple[str, Any]]:
        o = self.options
        # Pending articles and revisits fall due rarely: looking for them once per poll is soon enough,
        # and spares two queries on every look for due sources.
        now = time.monotonic()
        articles_too = now - self._articles_looked >= o.poll_seconds
        if articles_too:
            self._articles_looked = now

        def claim(conn: Connection[DictRow]) -> list[tuple[str, Any]]:
            out: list[tuple[str, Any]] = []
            sources = queue_db.claim_sources(conn, self.owner, min(room, self.sources_per_claim), o.lease_seconds)
            out += [("source", s) for s in sources if self.take(("s", s.tid))]
            left = room - len(sources) if articles_too else 0
            if left > 0:
                pending = queue_db.claim_pending_articles(conn, self.owner, left, o.lease_seconds,
                                                          o.max_fetch_failures)
                out += [("article", a) for a in pending if self.take(("a", a.docid))]
                left -= len(pending)
            if left > 0:
                revisits = queue_db.claim_revisits(conn, left, o.fetch_retry_seconds)
                out += [("revisit", a) for a in revisits if self.take(("a", a.docid))]
                left -= len(revisits)
            if articles_too and left <= 0 < room - len(sources):
                self._articles_looked = -math.inf  # a backlog: keep draining it at every look
            return out

        result: list[tuple[str, Any]] = self._with_db(claim, [])
        return result

    def _seconds_until_due(self) -> float | None:
        result: float | None = self._with_db(
            lambda conn: queue_db.seconds_until_due(conn, self.options.max_fetch_failures), self.options.poll_seconds)
        return result

    def claim_listed(self, docids: list[str]) -> list[str]:
        """Of the articles a check found missing, those this worker fetches now (registered in flight)."""
        allowed: list[str] = self._with_db(
            lambda conn: queue_db.claim_listed(conn, self.owner, docids, self.options.lease_seconds), [])
        return [d for d in allowed if self.take(("a", d))]

    # --- heartbeat: leases, lost work, recycling, the parent ------------------------------------

    async def _heartbeat(self) -> None:
        every = max(1.0, self.options.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self._beat)
            except Exception as exc:
                logger.error("worker heartbeat failed: {}: {}", type(exc).__name__, str(exc)[:300])

    def _beat(self) -> None:
        now = time.monotonic()
        lost = [k for k, since in self.inflight.items() if now - since > MAX_IN_FLIGHT_SECONDS]
        for key in lost:
            self.inflight.pop(key, None)
        lost_sources = [k[1] for k in lost if k[0] == "s"]
        keys = list(self.inflight)
        tids = [k[1] for k in keys if k[0] == "s"]
        docids = [k[1] for k in keys if k[0] == "a"]

        def beat(conn: Connection[DictRow]) -> None:
            queue_db.renew(conn, self.owner, tids, docids, self.options.lease_seconds)
            if lost_sources:
                logger.error("worker: the check of {} did not finish in {}s; retried later",
                             ", ".join(lost_sources), MAX_IN_FLIGHT_SECONDS)
                queue_db.give_up_sources(conn, self.owner, lost_sources, "check did not finish",
                                         self.options.fetch_retry_seconds)

        self._with_db(beat)
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            logger.error("worker: its service (pid {}) is gone; stopping", self.parent_pid)
            self.stop_reason = "parent gone"
            self._wake_threadsafe()
        if self.draining is None:
            self.draining = self._recycle_reason()
            if self.draining:
                logger.info("worker: recycling ({}); finishing the work in flight", self.draining)
        if now - self._run_started >= RUN_SEGMENT_SECONDS:
            self._rotate_run()

    def _recycle_reason(self) -> str | None:
        o = self.options
        age = time.monotonic() - self.started
        requests = self._stats().get("downloader/request_count", 0)
        rss = resident_bytes()
        if age >= o.worker_max_age:
            return f"recycle: age {age:.0f}s"
        if requests >= o.worker_max_requests:
            return f"recycle: {requests} requests"
        if rss >= o.worker_max_memory:
            return f"recycle: resident memory {rss // (1024 * 1024)} MB"
        return None

    # --- crawl_runs: one row per segment of the worker's life --------------------------------------

    def _stats(self) -> dict[str, int]:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        return {k: int(v) for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}

    def _segment_counts(self) -> dict[str, int]:
        now = self._stats()
        base = self._run_stats

        def delta(key: str) -> int:
            return max(0, now.get(key, 0) - base.get(key, 0))

        counts = {
            "requests": delta("downloader/request_count"),
            "new_articles": delta("haowatch/new_articles"),
            "updated_articles": delta("haowatch/updated_articles"),
            "deleted_articles": delta("haowatch/deleted_articles"),
            "errors": delta("haowatch/errors") + delta("haowatch/source_errors") + delta("spider_exceptions/count"),
        }
        self._run_stats = now
        return counts

    def _start_run(self) -> None:
        self._run_id = self._with_db(lambda conn: runs_db.start_run(conn, "worker", []))
        self._run_started = time.monotonic()
        self._run_stats = self._stats()

    def _finish_run(self, status: str) -> None:
        run_id = self._run_id
        if run_id is None:
            return
        counts = self._segment_counts()
        self._with_db(lambda conn: runs_db.finish_run(conn, run_id, status=status, stats={"owner": self.owner},
                                                      **counts))
        self._run_id = None

    def _rotate_run(self) -> None:
        self._finish_run("ok")
        self._start_run()

    # --- the end -----------------------------------------------------------------------------------

    def _listen(self) -> None:
        """Wake the feed when sources are added or changed (the trigger of migration 003)."""
        while not self._closed.is_set():
            try:
                with connect(self.database_url, application_name="haowatch-worker-listen") as conn:
                    sources_db.listen_for_changes(conn)
                    while not self._closed.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake_threadsafe()
            except psycopg.OperationalError:
                self._closed.wait(5.0)

    def _closing(self, reason: str, **_: Any) -> None:
        self._closed.set()
        status = "ok" if reason in ("finished", "shutdown", "parent gone") or reason.startswith("recycle") \
            else "aborted"
        self._finish_run(status)
        released = self._with_db(lambda conn: queue_db.release_owner(conn, self.owner), 0)
        if released:
            logger.info("worker: released {} unfinished claims", released)
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
