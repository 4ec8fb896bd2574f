"""Whether the service is doing its job: the tracker behind ``/healthz``; the server lives in scheduler.web."""

from __future__ import annotations

import threading
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
    """Counts ticks that raise and crawls after which no claimed source was checked successfully.

    ``problem()`` names the first of these that reached ``stale_ticks`` in a row; one good outcome
    resets its count.
    """

    def __init__(self, stale_ticks: int) -> None:
        self.stale_ticks = stale_ticks
        self._lock = threading.Lock()
        self._raising = 0
        self._fruitless = 0
        self._last_error = ""

    def tick_raised(self, exc: BaseException) -> None:
        with self._lock:
            self._raising += 1
            self._last_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"

    def tick_finished(self) -> None:
        with self._lock:
            self._raising = 0

    def crawl_checked(self, ok_sources: int) -> None:
        """After a crawl of claimed (due) sources: how many of them were checked successfully."""
        with self._lock:
            self._fruitless = 0 if ok_sources > 0 else self._fruitless + 1

    def problem(self) -> str | None:
        with self._lock:
            if self._raising >= self.stale_ticks:
                return f"the last {self._raising} ticks raised ({self._last_error[:200]})"
            if self._fruitless >= self.stale_ticks:
                return f"no due source checked successfully in the last {self._fruitless} crawls"
        return None
