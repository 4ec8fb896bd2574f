"""Where pages are parsed during a crawl: inline, or in worker processes beside the reactor.

Parsing a large article page takes milliseconds of CPU; in the reactor's thread that time is taken
from downloading. With workers (``HAOWATCH_PARSE_WORKERS``) the reactor only hands bytes over and
gets typed results back, so on a machine with a spare core parsing no longer slows fetching.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from loguru import logger

from crawler.extract import PageResult, parse_page

_PR_SET_PDEATHSIG = 1


def _worker_init(parent_pid: int) -> None:
    """Tie a worker's life to its crawl process: a SIGKILLed crawl must not leave workers behind."""
    # Not on Linux: no prctl, and workers end when their call queue closes instead.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(0)
    # Ctrl-C reaches the whole process group; only the crawl process decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PageParser:
    """Parses pages with ``parse_page``, in ``workers`` processes (0: in the calling thread)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def parse(self, body: bytes, url: str | None, content_type: str | None, *,
                    inline: bool = False) -> PageResult:
        """The typed result for one page; never raises for any page content.

        ``inline`` parses in the calling thread even with workers: for pages that parse in about
        the time it takes to hand them to a worker and back (account pages).
        """
        if self.workers <= 0 or inline:
            return parse_page(body, url, content_type)
        if self._pool is None:
            # spawn, not fork: the crawl process has threads (database pool, DNS) a fork would copy mid-flight.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init, initargs=(os.getpid(),))
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, parse_page, body, url, content_type)
        except BrokenProcessPool:
            logger.warning("parse worker died; parsing in the crawl process from now on")
            self.close()
            self.workers = 0
            return parse_page(body, url, content_type)

    def close(self) -> None:
        """Stop the workers (pending parses are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
