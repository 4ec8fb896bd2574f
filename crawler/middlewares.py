"""Downloader middleware: retries with exponential backoff that honour ``Retry-After``."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.utils.response import response_status_message


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
    raw = min(cap, base * (2**attempt))
    return raw * (0.5 + (rng or random).random() / 2)


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry policy (codes, exceptions, data loss), but waiting before each retry.

    The wait grows exponentially with the attempt number; a ``Retry-After`` header on 429/503 wins
    when it asks for longer (capped by ``HAOWATCH_RETRY_AFTER_MAX``).
    """

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.base = settings.getfloat("HAOWATCH_RETRY_BACKOFF_BASE", 2.0)
        self.cap = settings.getfloat("HAOWATCH_RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_cap = settings.getfloat("HAOWATCH_RETRY_AFTER_MAX", 300.0)

    async def _wait(self, request: Request, response: Response | None) -> None:
        attempt = request.meta.get("retry_times", 0)
        delay = backoff_delay(attempt, self.base, self.cap)
        if response is not None and response.status in (429, 503):
            asked = retry_after_seconds(response.headers.get(b"Retry-After"))
            if asked is not None:
                delay = max(delay, min(asked, self.retry_after_cap))
        self.crawler.stats.inc_value("haowatch/retry_wait_seconds", delay)
        if delay > 0:
            await asyncio.sleep(delay)

    async def process_response(self, request: Request, response: Response, spider=None):  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._wait(request, response)
        return retry

    async def process_exception(self, request: Request, exception: Exception, spider=None):  # type: ignore[override]
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await self._wait(request, None)
        return retry
