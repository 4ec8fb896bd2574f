"""``haowatch run``: the long-running service.

APScheduler runs three jobs: the *tick* (claim due sources, crawl them in a child process, release),
*revisits* of recent articles, and *housekeeping*. Crawls run as child processes (``haowatch crawl``)
because a Twisted reactor cannot be restarted in one process, and a fresh process per crawl returns
all its memory to the system: the service stays small however long it runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType

import psycopg
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from loguru import logger
from psycopg import Connection
from psycopg.rows import DictRow

from db import articles as articles_db
from db import runs as runs_db
from db import sources as sources_db
from db import web as web_db
from db.connection import connect
from db.migrate import ensure_partitions
from scheduler.config import Settings
from scheduler.health import HealthTracker
from scheduler.notify import Dispatcher
from scheduler.web.server import HealthServer

REVISIT_EVERY_SECONDS = 600
HOUSEKEEPING_EVERY_SECONDS = 3600
STOP_GRACE_SECONDS = 30


class Service:
    """The scheduler, its jobs and the child crawl processes."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.counters: Counter[str] = Counter()
        self.health = HealthTracker(settings.health_stale_ticks)
        self._child: subprocess.Popen[bytes] | None = None
        self._child_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.tick_seconds},
            timezone=UTC,
        )

    # --- jobs ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Crawl due sources batch after batch until none is due (or the service is stopping)."""
        try:
            self._tick()
        except Exception as exc:
            self.health.tick_raised(exc)  # counted for /healthz; APScheduler logs it
            raise
        self.health.tick_finished()

    def _tick(self) -> None:
        while not self.stopping.is_set():
            with connect(self.database_url) as conn:
                tids = sources_db.claim_due(conn, self.owner, self.settings.sources_per_crawl,
                                            self.settings.lease_seconds)
                started = web_db.db_now(conn)
            if not tids:
                return
            result = self._crawl(["crawl", *tids])
            failed = None if result in ("ok", "stopped") else f"crawl process {result}"
            with connect(self.database_url) as conn:
                sources_db.release(conn, self.owner, tids, failed_error=failed)
                self._report_silent_failures(conn, tids)
                if result != "stopped":
                    self.health.crawl_checked(web_db.checked_ok_since(conn, tids, started))

    def revisit(self) -> None:
        """Re-download recent articles whose revisit time has come (edits and deletions)."""
        if self.stopping.is_set():
            return
        with connect(self.database_url) as conn:
            due = articles_db.due_revisits(conn, datetime.now(UTC), limit=200)
        if due:
            self._crawl(["refetch", *due])

    def housekeeping(self) -> None:
        """Close crawl_runs rows left open by killed crawl processes; create the coming months' partitions."""
        with connect(self.database_url) as conn:
            stale = runs_db.abandon_stale_runs(conn, self.settings.crawl_timeout * 2)
            created = ensure_partitions(conn)
        if created:
            logger.info("housekeeping: {} monthly partitions created", created)
        if stale:
            logger.info("housekeeping: {} unfinished crawl runs marked aborted", stale)

    def _report_silent_failures(self, conn: Connection[DictRow], tids: Sequence[str]) -> None:
        for problem in sources_db.sources_needing_attention(conn, tids):
            logger.error(
                "SOURCE {} ({}) IS {}: {} — its feed may be silently broken (site markup changed?)",
                problem.tid, problem.name or "?", problem.last_status.upper(), problem.last_error,
            )

    # --- child crawl processes -----------------------------------------------------------------

    def _crawl(self, args: list[str]) -> str:
        """Run ``haowatch ARGS`` as a child; return ok, failed, timeout or stopped."""
        env = dict(os.environ, DATABASE_URL=self.database_url)
        cmd = [sys.executable, "-m", "scheduler.cli", *args]
        with self._child_lock:
            if self.stopping.is_set():
                return "stopped"
            self._child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        child = self._child
        try:
            code = child.wait(timeout=self.settings.crawl_timeout)
        except subprocess.TimeoutExpired:
            logger.error("crawl took longer than {}s: stopping it", self.settings.crawl_timeout)
            self._stop_child(child)
            self.counters["crawls_timeout"] += 1
            return "timeout"
        finally:
            with self._child_lock:
                self._child = None
        if self.stopping.is_set():
            self.counters["crawls_stopped"] += 1
            return "stopped"
        result = "ok" if code == 0 else "failed"
        self.counters[f"crawls_{result}"] += 1
        if code != 0:
            logger.error("crawl process exited with code {}", code)
        return result

    @staticmethod
    def _stop_child(child: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
        # SIGINT makes Scrapy finish the requests in flight and close its pipelines; every stored
        # article is one transaction, so even the final SIGKILL cannot leave half-written rows.
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        now = datetime.now(UTC)
        self.scheduler.add_job(self.tick, "interval", seconds=s.tick_seconds, id="tick", next_run_time=now)
        self.scheduler.add_job(self.revisit, "interval", seconds=REVISIT_EVERY_SECONDS, id="revisit",
                               next_run_time=now)
        self.scheduler.add_job(self.housekeeping, "interval", seconds=HOUSEKEEPING_EVERY_SECONDS,
                               id="housekeeping", next_run_time=now)
        self.scheduler.start()
        logger.info("haowatch running as {}: tick every {}s, site {}", self.owner, s.tick_seconds, s.site_url)

    def wake(self) -> None:
        """Run the tick now (used when sources change)."""
        job = self.scheduler.get_job("tick")
        if job is not None and not self.stopping.is_set():
            job.modify(next_run_time=datetime.now(UTC))

    def stop(self) -> None:
        """Stop claiming, let the running crawl finish (bounded), release claims."""
        self.stopping.set()
        with self._child_lock:
            child = self._child
        if child is not None:
            logger.info("stopping: waiting for the running crawl to finish (at most {}s)", STOP_GRACE_SECONDS)
            self._stop_child(child)
        self.scheduler.shutdown(wait=True)
        try:
            with connect(self.database_url) as conn:
                sources_db.release_all(conn, self.owner)
        except psycopg.OperationalError as exc:
            logger.warning("could not release claims (they expire with their lease): {}", exc)

    @property
    def healthy(self) -> bool:
        return self.scheduler.running and not self.stopping.is_set()

    def health_problem(self) -> str | None:
        """Why the service is not doing its job although it runs, or None."""
        return self.health.problem()


def run_service(settings: Settings, database_url: str) -> int:
    """Run until SIGTERM or Ctrl-C; return the exit code (0 on a clean stop)."""
    service = Service(settings, database_url)
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received {}, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    health = HealthServer(settings.http_host, settings.http_port, database_url, service,
                          token=settings.http_token, site_url=settings.site_url)
    health.start()
    service.start()
    dispatcher = Dispatcher(database_url, max_attempts=settings.notify_max_attempts,
                            retry_seconds=settings.notify_retry_seconds,
                            max_backoff_seconds=settings.notify_max_backoff_seconds,
                            lease_seconds=settings.notify_lease_seconds, site_url=settings.site_url,
                            counters=service.counters)
    dispatcher.start()
    listener = threading.Thread(target=_listen_for_changes, args=(database_url, service, stop_requested),
                                daemon=True)
    listener.start()
    try:
        while not stop_requested.wait(1.0):
            pass
    finally:
        stop_requested.set()
        dispatcher.stop()
        service.stop()
        health.stop()
        listener.join(timeout=5)
    logger.info("haowatch stopped")
    return 0


def _listen_for_changes(database_url: str, service: Service, stop: threading.Event) -> None:
    """Wake the tick when sources change (NOTIFY from a trigger), so edits apply within seconds."""
    while not stop.is_set():
        try:
            with connect(database_url) as conn:
                sources_db.listen_for_changes(conn)
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        service.wake()
        except psycopg.OperationalError as exc:
            if stop.is_set():
                return
            logger.warning("change listener lost its connection ({}); retrying", str(exc).splitlines()[0])
            stop.wait(5.0)
