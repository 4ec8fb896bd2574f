"""``haowatch run``: the long-running service.

A supervised child process, the crawl *worker* (``haowatch worker``), does all the crawling: it keeps
taking due account checks, pending articles and revisits from PostgreSQL through one Scrapy
downloader (see :mod:`crawler.feed`). The service restarts it when it dies and lets it recycle
itself (a fresh process after an age, a number of requests or an amount of memory), so a crash
in the crawl never takes the service down and its memory stays bounded however long it runs.
APScheduler is the clock of the periodic jobs: the health *tick* and *housekeeping*.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from types import FrameType

import psycopg
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from loguru import logger

from db import maintenance as maintenance_db
from db import queue as queue_db
from db import runs as runs_db
from db import web as web_db
from db.connection import connect
from db.migrate import ensure_partitions
from scheduler.config import Settings
from scheduler.health import HealthTracker
from scheduler.notify import Dispatcher
from scheduler.web.server import HealthServer

HOUSEKEEPING_EVERY_SECONDS = 3600
# Where the server's autovacuum is off: the tables every store rewrites stay a few pages when vacuumed
# this often (without it they grew by 6 KB per stored article).
HOT_VACUUM_EVERY_SECONDS = 300
STOP_GRACE_SECONDS = 30
# A worker dying again and again is restarted after a growing pause, up to this long.
MAX_RESTART_PAUSE_SECONDS = 60.0


class WorkerSupervisor:
    """Runs the crawl worker as a child process: restarts it when it exits, stops it on request."""

    def __init__(self, settings: Settings, database_url: str, owner: str, health: HealthTracker,
                 counters: Counter[str], stopping: threading.Event) -> None:
        self.settings = settings
        self.database_url = database_url
        self.owner = owner
        self.health = health
        self.counters = counters
        self.stopping = stopping
        self.generation = 0
        self.worker_owner: str | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="haowatch-worker-supervisor", daemon=True)
        for result in ("ok", "failed"):
            self.counters[f"crawls_{result}"] += 0  # the series exist from the start

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        self.generation += 1
        worker_owner = f"{self.owner}/w{self.generation}"
        cmd = [sys.executable, "-m", "scheduler.cli", "worker", "--owner", worker_owner, "--parent", str(os.getpid())]
        env = dict(os.environ, DATABASE_URL=self.database_url)
        with self._lock:
            if self.stopping.is_set():
                return None
            self.worker_owner = worker_owner
            # Its own process group: a Ctrl-C in the terminal reaches the service alone, which then
            # stops the worker in order (a worker interrupted while it starts would print a traceback).
            self._child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, process_group=0)
            return self._child

    def _run(self) -> None:
        pause = 1.0
        while not self.stopping.is_set():
            child = self._spawn()
            if child is None:
                return
            started = time.monotonic()
            code = child.wait()
            lived = time.monotonic() - started
            self._release()
            if self.stopping.is_set():
                return
            clean = code == 0
            self.counters["crawls_ok" if clean else "crawls_failed"] += 1
            self.health.worker_exited(lived, clean, f"exit code {code}")
            if clean:
                logger.info("crawl worker recycled after {:.0f}s; starting a fresh one", lived)
                pause = 1.0
                continue
            if lived >= HealthTracker.WORKER_SETTLED_SECONDS:
                pause = 1.0
            logger.error("crawl worker exited with code {} after {:.0f}s; restarting it in {:.0f}s", code, lived,
                         pause)
            self.counters["worker_restarts"] += 1
            self.stopping.wait(pause)
            pause = min(MAX_RESTART_PAUSE_SECONDS, pause * 2)

    def _release(self) -> None:
        """Free what the ended worker held, so its sources and articles are taken at once, not
        after their leases."""
        if self.worker_owner is None:
            return
        try:
            with connect(self.database_url) as conn:
                released = queue_db.release_owner(conn, self.worker_owner)
        except psycopg.OperationalError as exc:
            logger.warning("could not release the worker's claims (they expire with their lease): {}",
                           str(exc).splitlines()[0][:200])
            return
        if released:
            logger.info("released {} claims the crawl worker left", released)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Ask the worker to finish the requests in flight (SIGTERM), kill it after ``grace`` seconds."""
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            logger.info("stopping: waiting for the crawl worker to finish (at most {}s)", grace)
            # SIGTERM makes Scrapy finish the requests in flight and close its pipelines (a worker
            # still starting up just ends, quietly); every stored article is one transaction, so even
            # the final SIGKILL cannot leave half-written rows.
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._thread.join(timeout=10)
        if child is not None:
            self._release()


class Service:
    """The scheduler with its periodic jobs, and the supervised crawl worker."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.counters: Counter[str] = Counter()
        self.health = HealthTracker(settings.health_stale_ticks)
        self.supervisor = WorkerSupervisor(settings, database_url, self.owner, self.health, self.counters,
                                           self.stopping)
        self._checks_since: datetime | None = None
        self._told_autovacuum_off = False
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.tick_seconds},
            timezone=UTC,
        )

    # --- jobs ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Read what this replica's worker checked since the last tick (for ``/healthz``)."""
        try:
            self._tick()
        except Exception as exc:
            self.health.tick_raised(exc)  # counted for /healthz; APScheduler logs it
            raise
        self.health.tick_finished()

    def _tick(self) -> None:
        with connect(self.database_url) as conn:
            if self._checks_since is None:
                self._checks_since = web_db.db_now(conn)
            checks = queue_db.checks_by(conn, self.owner + "/", self._checks_since)
            # Late by more than a lease: no worker is on it (or its check hangs).
            overdue = queue_db.overdue_sources(conn, max(self.settings.lease_seconds, 2 * self.settings.tick_seconds))
        if checks:
            self._checks_since = checks[-1].checked_at
        self.health.tick_checked([c.ok for c in checks], overdue)

    def housekeeping(self) -> None:
        """Close crawl_runs rows left open by killed crawl processes; create the coming months' partitions."""
        with connect(self.database_url) as conn:
            stale = runs_db.abandon_stale_runs(conn, self.settings.crawl_timeout * 2)
            created = ensure_partitions(conn)
        if created:
            logger.info("housekeeping: {} monthly partitions created", created)
        if stale:
            logger.info("housekeeping: {} unfinished crawl runs marked aborted", stale)

    def vacuum_hot_tables(self) -> None:
        """VACUUM the tables every store updates in place, when the server's autovacuum does not."""
        with connect(self.database_url) as conn:
            done = maintenance_db.vacuum_hot_tables(conn)
        if done and not self._told_autovacuum_off:
            self._told_autovacuum_off = True
            logger.warning("the PostgreSQL server has autovacuum off: haowatch vacuums {} itself every {} s;"
                           " its other tables grow until vacuumed", ", ".join(maintenance_db.HOT_TABLES),
                           HOT_VACUUM_EVERY_SECONDS)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        now = datetime.now(UTC)
        self.scheduler.add_job(self.tick, "interval", seconds=s.tick_seconds, id="tick", next_run_time=now)
        self.scheduler.add_job(self.housekeeping, "interval", seconds=HOUSEKEEPING_EVERY_SECONDS,
                               id="housekeeping", next_run_time=now)
        self.scheduler.add_job(self.vacuum_hot_tables, "interval", seconds=HOT_VACUUM_EVERY_SECONDS,
                               id="vacuum_hot_tables", next_run_time=now)
        self.scheduler.start()
        self.supervisor.start()
        logger.info("haowatch running as {}: crawl worker supervised, site {}", self.owner, s.site_url)

    def stop(self) -> None:
        """Stop the worker (it finishes what is in flight, bounded) and the scheduler."""
        self.stopping.set()
        self.supervisor.stop()
        self.scheduler.shutdown(wait=True)

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
    try:
        while not stop_requested.wait(1.0):
            pass
    finally:
        stop_requested.set()
        dispatcher.stop()
        service.stop()
        health.stop()
    logger.info("haowatch stopped")
    return 0

