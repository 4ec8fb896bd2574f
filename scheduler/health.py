"""Whether the service is doing its job: the tracker behind ``/healthz``; the server lives in scheduler.web."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any


class StartupError(RuntimeError):
    """The service cannot start (its port is taken, or it would be exposed without a token)."""


def __getattr__(name: str) -> Any:
    # The server pulls in feeds, metrics and the page renderer: only load it when someone asks.
    if name == "HealthServer":
        from scheduler.web.server import HealthServer

        return HealthServer
    raise AttributeError(name)


class HealthTracker:
    """Counts ticks that raise, ticks in which no due source was checked successfully, and crawl
    workers that die soon after starting.

    ``problem()`` names the first of these that reached ``stale_ticks`` in a row; one good outcome
    resets its count.
    """

    # A worker that lived this long before it exited did real work: its exit is not "keeps dying".
    WORKER_SETTLED_SECONDS = 60.0

    def __init__(self, stale_ticks: int) -> None:
        self.stale_ticks = stale_ticks
        self._lock = threading.Lock()
        self._raising = 0
        self._fruitless = 0
        self._deaths = 0
        self._last_error = ""
        self._last_death = ""

    def tick_raised(self, exc: BaseException) -> None:
        with self._lock:
            self._raising += 1
            self._last_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"

    def tick_finished(self) -> None:
        with self._lock:
            self._raising = 0

    def tick_checked(self, outcomes: Sequence[bool], overdue: int) -> None:
        """What this replica's checks since the last tick gave (True: successful), and how many
        sources are overdue: a tick with failed checks only, or with none while sources wait, is
        fruitless; one successful check resets the count."""
        with self._lock:
            if any(outcomes):
                self._fruitless = 0
            elif outcomes or overdue:
                self._fruitless += 1

    def worker_exited(self, lived_seconds: float, clean: bool, why: str) -> None:
        """The crawl worker exited after ``lived_seconds`` (``clean``: stopped or recycled on purpose)."""
        with self._lock:
            if clean or lived_seconds >= self.WORKER_SETTLED_SECONDS:
                self._deaths = 0
            else:
                self._deaths += 1
                self._last_death = why

    def problem(self) -> str | None:
        with self._lock:
            if self._raising >= self.stale_ticks:
                return f"the last {self._raising} ticks raised ({self._last_error[:200]})"
            if self._deaths >= self.stale_ticks:
                return f"the crawl worker died {self._deaths} times in a row ({self._last_death[:200]})"
            if self._fruitless >= self.stale_ticks:
                return f"no due source checked successfully in the last {self._fruitless} ticks"
        return None
