"""Downloader middleware against blocks: a host-wide slowdown that follows the block rate, and proxy
rotation with politeness per proxy.

A block (403/418/429/451, a captcha or 访问过于频繁 page, an empty 200, a JavaScript challenge, as
classified by :func:`crawler.extract.blocks.classify_block`) doubles the host's extra spacing
between requests (up to ``HAOWATCH_BLOCK_SLOWDOWN_MAX`` seconds); each unblocked answer shrinks it
by a third, so the pace recovers gradually. The spacing is per *host*, shared by every source,
proxy and download slot that talks to it: blocks are the host's verdict on haowatch as a whole.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from typing import Any
from urllib.parse import urlsplit

from loguru import logger
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.extract.blocks import classify_block
from crawler.settings import crawl_options

FIRST_STEP = 1.0  # seconds of spacing after the first block
RECOVERY = 0.67  # factor per unblocked answer
FLOOR = 0.05  # below this the slowdown is over
RECHECK_SECONDS = 1.0  # a waiting request looks again this often: the spacing may have relaxed


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _headers(response: Response) -> dict[str, str]:
    ctype = response.headers.get(b"Content-Type") or b""
    return {"Content-Type": ctype.decode("latin-1")}


class BlockSlowdownMiddleware:
    """Spaces requests to a host that has started blocking, and relaxes as answers come through."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.maximum = crawl_options(crawler.settings).block_slowdown_max
        self.spacing: dict[str, float] = {}
        self.last_sent: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BlockSlowdownMiddleware:
        return cls(crawler)

    def _stats(self, key: str, value: float = 1) -> None:
        if self.crawler.stats is not None:
            # Scrapy's stats hold any number; its annotation says int.
            self.crawler.stats.inc_value(f"haowatch/{key}", value)  # type: ignore[arg-type]

    async def process_request(self, request: Request, spider: Any = None) -> None:
        # Waiting requests do not book turns in advance: each takes the next free turn at the
        # spacing in force *now*, so when the host relaxes every waiting request relaxes with it
        # (turns booked at a 2-minute spacing would hold a long-running worker for hours).
        host = _host(request.url)
        while (spacing := self.spacing.get(host, 0.0)) > 0:
            now = time.monotonic()
            turn = self.last_sent.get(host, -math.inf) + spacing
            if now >= turn:
                self.last_sent[host] = now
                return None
            wait = min(turn - now, RECHECK_SECONDS)
            self._stats("block_wait_seconds", wait)
            await asyncio.sleep(wait)
        self.last_sent[host] = time.monotonic()
        return None

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if self.maximum <= 0:
            return response
        host = _host(request.url)
        body = bytes(response.body)
        block = classify_block(response.status, _headers(response), body,
                               expect_json=body.lstrip()[:1] in (b"{", b"["))
        old = self.spacing.get(host, 0.0)
        if block is not None:
            new = min(self.maximum, max(FIRST_STEP, old * 2))
            self._stats("blocked_responses")
            if new > old:
                logger.warning("{} is blocking ({}): spacing its requests {:.1f} s apart", host, block.reason, new)
        else:
            new = old * RECOVERY
            if new < FLOOR:
                new = 0.0
                if old > 0:
                    logger.info("{} answers normally again: block slowdown over", host)
        self.spacing[host] = new
        if self.crawler.stats is not None:
            self.crawler.stats.max_value("haowatch/block_slowdown_max_seconds", new)
        return response


class ProxyRotationMiddleware:
    """Sends each request through the next of ``HAOWATCH_PROXIES`` (round robin), in a download slot
    of its own per proxy so concurrency and delays hold per proxy; sets the browser to impersonate
    when ``HAOWATCH_IMPERSONATE`` is on."""

    def __init__(self, crawler: Crawler) -> None:
        options = crawl_options(crawler.settings)
        self.proxies: list[str] = list(options.proxies)
        self.browser: str | None = options.impersonate or None
        self._next = itertools.count()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyRotationMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        if self.browser:
            request.meta.setdefault("impersonate", self.browser)
        if not self.proxies or ("proxy" in request.meta and "haowatch_proxy" not in request.meta):
            return None
        # Retries come through here again and move on to the next proxy.
        index = next(self._next) % len(self.proxies)
        request.meta["proxy"] = self.proxies[index]
        request.meta["haowatch_proxy"] = index
        request.meta["download_slot"] = f"{_host(request.url)}|proxy{index}"
        return None
