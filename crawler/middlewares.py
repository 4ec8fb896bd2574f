"""Downloader middlewares: retries with exponential backoff that honour ``Retry-After`` within a
per-page budget; refusal of off-site responses, redirect loops and oversized headers."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

from loguru import logger
from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.utils.response import response_status_message
from twisted.web import _newclient

from crawler.offsite import AllowedHosts, OffsiteResponse, RedirectLoop, TooLarge
from crawler.settings import crawl_options

_REDIRECT_CODES = (301, 302, 303, 307, 308)


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: about ``base * 2**attempt`` seconds, at most ``cap``."""
    raw = min(cap, base * 2.0**attempt)
    return raw * (0.5 + (rng.random() if rng else random.random()) / 2)


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry policy (codes, exceptions, data loss), but waiting before each retry.

    The wait grows exponentially with the attempt number; a ``Retry-After`` header on 429/503 wins
    when it asks for longer (capped by ``HAOWATCH_RETRY_AFTER_MAX``). All waits of one page together
    stay within ``HAOWATCH_RETRY_WAIT_TOTAL``: a page that would need longer is given up at once and
    stays pending for the next check, instead of holding the crawl (and every other due source).
    """

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.base = settings.getfloat("HAOWATCH_RETRY_BACKOFF_BASE", 2.0)
        self.cap = settings.getfloat("HAOWATCH_RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_cap = settings.getfloat("HAOWATCH_RETRY_AFTER_MAX", 300.0)
        self.wait_budget = settings.getfloat("HAOWATCH_RETRY_WAIT_TOTAL", 120.0)

    def _delay(self, request: Request, response: Response | None) -> float | None:
        """Seconds to wait before the next retry, or None when the page's wait budget cannot cover it."""
        attempt = request.meta.get("retry_times", 0)
        delay = backoff_delay(attempt, self.base, self.cap)
        if response is not None and response.status in (429, 503):
            asked = retry_after_seconds(response.headers.get(b"Retry-After"))
            if asked is not None:
                delay = max(delay, min(asked, self.retry_after_cap))
        if request.meta.get("haowatch_waited", 0.0) + delay > self.wait_budget:
            return None
        return delay

    async def _wait(self, retry: Request, delay: float) -> None:
        retry.meta["haowatch_waited"] = retry.meta.get("haowatch_waited", 0.0) + delay
        # Scrapy's stats hold any number; its annotation says int.
        self.crawler.stats.inc_value("haowatch/retry_wait_seconds", delay)  # type: ignore[arg-type]
        if delay > 0:
            await asyncio.sleep(delay)

    def _over_budget(self, request: Request, why: str) -> None:
        self.crawler.stats.inc_value("haowatch/retry_budget_exhausted")
        logger.warning("{}: {}; not retrying now (retry waits of a page are capped at {:g}s), pending for the"
                       " next check", request.url, why, self.wait_budget)

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        delay = self._delay(request, response)
        if delay is None:
            self._over_budget(request, response_status_message(response.status))
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._wait(retry, delay)
        return retry

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> Request | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        if (refusal := _refusal_inside(exception)) is not None:
            raise refusal  # an oversized header block is refused, never fetched again
        delay = self._delay(request, None)
        if delay is None:
            self._over_budget(request, type(exception).__name__)
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await self._wait(retry, delay)
        return retry


def _refusal_inside(exception: BaseException) -> TooLarge | None:
    """The TooLarge refusal a download failure wraps (Twisted reports parser errors as ResponseFailed)."""
    seen: set[int] = set()
    pending: list[object] = [exception]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        value = getattr(current, "value", current)  # a twisted Failure holds its exception in .value
        if isinstance(value, TooLarge):
            return value
        if isinstance(value, BaseException):
            pending.extend(getattr(value, "reasons", None) or [])
            pending.extend(x for x in (value.__cause__, value.__context__) if x is not None)
    return None


class OffsiteMiddleware:
    """Refuses requests and responses off the allowed hosts, and redirect loops.

    Sits before Scrapy's redirect middleware on the way in from the network, so a redirect to
    another host is refused before anything is fetched from there (``unexpected: off-site``).
    """

    def __init__(self, crawler: Crawler) -> None:
        options = crawl_options(crawler.settings)
        self.crawler = crawler
        self.allowed = AllowedHosts([options.site_url, options.list_api_url, options.app_api_url],
                                    list(options.allowed_hosts))
        limit_response_headers(options.max_header_bytes)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OffsiteMiddleware:
        return cls(crawler)

    def _stat(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"haowatch/{key}")

    def _refuse_offsite(self, url: str, request: Request) -> OffsiteResponse:
        self._stat("offsite_refused")
        logger.warning("refused {}: off-site {} (allowed: site, list API, app list, HAOWATCH_ALLOWED_HOSTS)",
                       request.meta.get("redirect_urls", [request.url])[0], url[:200])
        return OffsiteResponse(f"unexpected: off-site: {url[:200]}")

    def process_request(self, request: Request, spider=None) -> None:  # type: ignore[no-untyped-def]
        if not self.allowed.allows(request.url):
            raise self._refuse_offsite(request.url, request)

    def process_response(self, request: Request, response: Response, spider=None) -> Response:  # type: ignore[no-untyped-def]
        raw_location = response.headers.get(b"Location")
        if response.status in _REDIRECT_CODES and raw_location is not None:
            location = raw_location.decode("latin-1")
            target = urljoin(request.url, location)
            if not self.allowed.allows(target):
                raise self._refuse_offsite(target, request)
            if target == request.url or target in request.meta.get("redirect_urls", ()):
                self._stat("redirect_loops")
                logger.warning("refused {}: redirect loop back to {}", request.url, target[:200])
                raise RedirectLoop(f"redirect loop: {request.url} -> {target[:200]}")
        if not self.allowed.allows(response.url):
            raise self._refuse_offsite(response.url, request)
        return response


class _HeadersTooLarge(TooLarge):
    pass


_installed_header_limit: int | None = None


def limit_response_headers(max_bytes: int) -> None:
    """Refuse any response whose status line and headers exceed ``max_bytes`` (once per process).

    Twisted's HTTP client bounds each line but not how many lines come: endless headers would
    grow without end. Scrapy offers no setting for it, so the line handlers of Twisted's response
    parser and of Scrapy's lenient variant of it are wrapped here.
    """
    global _installed_header_limit
    first = _installed_header_limit is None
    _installed_header_limit = max_bytes
    if not first:
        return
    from scrapy.core.downloader.handlers import http11

    parsers: list[type[Any]] = [_newclient.HTTPClientParser]
    lenient = getattr(http11, "_LenientHTTPClientParser", None)
    if isinstance(lenient, type) and "lineReceived" in vars(lenient):
        parsers.append(lenient)
    for parser in parsers:
        parser.lineReceived = _counting(parser.lineReceived)
    _newclient.HTTPClientParser.lineLengthExceeded = _line_too_long  # type: ignore[method-assign]


def _counting(original):  # type: ignore[no-untyped-def]
    def line_received(self, line: bytes) -> None:  # type: ignore[no-untyped-def]
        if self.state in (_newclient.STATUS, _newclient.HEADER):
            self._haowatch_header_bytes = getattr(self, "_haowatch_header_bytes", 0) + len(line) + 1
            if _installed_header_limit is not None and self._haowatch_header_bytes > _installed_header_limit:
                raise _HeadersTooLarge(f"too large: response headers over {_installed_header_limit} bytes"
                                       " (HAOWATCH_MAX_HEADER_SIZE)")
        original(self, line)

    return line_received


def _line_too_long(self, line: bytes) -> None:  # type: ignore[no-untyped-def]
    raise _HeadersTooLarge(f"too large: a response header line over {self.MAX_LENGTH} bytes")
