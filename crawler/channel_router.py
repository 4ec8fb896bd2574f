"""Scrapy glue for the discovery channels: turns a source check into channel requests and items.

The spider hands an account page's answer to :meth:`ChannelRouter.account_answered` (or a failed
request to :meth:`ChannelRouter.account_failed`); the router asks fallback channels when needed
(every channel on a cross-check), pages back through a list channel when a check of a source with
history found nothing it knew, and finally yields the listing, the source's status, the channel
report, evidence of failed answers, and the requests for the articles still missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import scrapy
from loguru import logger
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.catalog import Catalog
from crawler.channels import (
    ACCOUNT,
    APPLIST,
    CHANNEL_NAMES,
    LISTAPI,
    PRIMARY,
    ChannelAnswer,
    SourceCheck,
    failed_answer,
    interpret,
    parse_channel_body,
)
from crawler.extract.blocks import classify_block
from crawler.extract.types import AccountPage, ListedItem, PageResult
from crawler.ids import list_api_url
from crawler.items import CapturedPageItem, ChannelReportItem, GapItem, ListingItem, SourceCheckItem
from db.channels import ChannelOutcome

LIST_PAGE_SIZE = 10
APP_PAGE_SIZE = 20


def app_list_url(base: str, tid: str, offset: int, size: int = APP_PAGE_SIZE) -> str:
    """The news app's list of an account's items (by T-id), on the configured base."""
    return f"{base.rstrip('/')}/nc/subscribe/list/{tid}/all/{offset}-{size}.html"


def plain_headers(response: Response) -> dict[str, str]:
    """Response headers as a plain ``{name: first value}`` dict."""
    out: dict[str, str] = {}
    for key, values in response.headers.items():
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        value = values[0] if values else b""
        out[name] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return out


def _now() -> datetime:
    return datetime.now(UTC)


class _Spider(Protocol):
    catalog: Catalog | None
    crawler: scrapy.crawler.Crawler

    def _fetch_missing(self, tid: str, articles: Sequence[Any]) -> Iterator[scrapy.Request]: ...


def capture_item(response: Response, reason: str, page_type: str, detail: str | None,
                 tid: str | None) -> CapturedPageItem:
    """Evidence of one response that ended ``reason``."""
    return CapturedPageItem(url=response.url, status=response.status, headers=plain_headers(response),
                            reason=reason, page_type=page_type, detail=detail, source_tid=tid,
                            body=bytes(response.body))


class ChannelRouter:
    """Routes one source check across the account page, the list API and the app list."""

    def __init__(self, spider: _Spider, *, list_api_base: str, app_api_base: str, cross_check_every: int,
                 gap_pages: int, headers: dict[str, str]) -> None:
        self.spider = spider
        self.list_api_base = list_api_base
        self.app_api_base = app_api_base
        self.cross_check_every = cross_check_every
        self.gap_pages = gap_pages
        self.headers = headers

    def _stat(self, key: str, count: int = 1) -> None:
        assert self.spider.crawler.stats is not None
        self.spider.crawler.stats.inc_value(f"haowatch/{key}", count)

    def _new_check(self, tid: str, wemedia_id: str | None) -> SourceCheck:
        assert self.spider.catalog is not None
        context = self.spider.catalog.check_context(tid)
        every = self.cross_check_every
        return SourceCheck(
            tid=tid, wemedia_id=wemedia_id or context.wemedia_id,
            cross_check=every > 0 and context.checks_since_cross_check + 1 >= every,
            last_status=context.last_status, has_history=context.has_history, started_at=context.now,
        )

    # --- primary -------------------------------------------------------------------------------

    async def account_answered(self, response: Response, result: PageResult | None) -> AsyncIterator[Any]:
        """The account page answered (any status); ``result`` is its parse (None when not parsed)."""
        meta = response.meta
        check = self._new_check(meta["tid"], meta.get("wemedia_id"))
        answer = interpret(ACCOUNT, response.status, plain_headers(response), bytes(response.body), result,
                           response.url)
        for item in self._evidence(response, answer, check.tid):
            yield item
        check.record(answer)
        for out in self._advance(check):
            yield out

    def account_failed(self, failure: Failure) -> Iterator[Any]:
        """The account page request failed outright (network error, retries exhausted)."""
        request = failure.request  # type: ignore[attr-defined]
        check = self._new_check(request.meta["tid"], request.meta.get("wemedia_id"))
        check.record(failed_answer(ACCOUNT, _failure_text(failure), request.url))
        yield from self._advance(check)

    # --- other channels ------------------------------------------------------------------------

    def _request(self, check: SourceCheck, channel: str, page: int, gap: bool = False) -> scrapy.Request:
        if channel == LISTAPI:
            assert check.wemedia_id
            url = list_api_url(self.list_api_base, check.wemedia_id, page, LIST_PAGE_SIZE)
        else:
            url = app_list_url(self.app_api_base, check.tid, (page - 1) * APP_PAGE_SIZE)
        return scrapy.Request(url, callback=self.channel_answered, errback=self.channel_failed, priority=10,
                              dont_filter=True, headers=self.headers,
                              meta={"check": check, "channel": channel, "page": page, "gap": gap,
                                    "tid": check.tid})

    def _advance(self, check: SourceCheck) -> Iterator[Any]:
        channels = check.next_channels()
        if not channels:
            yield from self._finish(check)
            return
        check.pending = set(channels)
        for channel in channels:
            yield self._request(check, channel, 1)

    def channel_answered(self, response: Response) -> Iterator[Any]:
        """A list channel answered (a fallback, a cross-check or a page of a gap walk)."""
        meta = response.meta
        check: SourceCheck = meta["check"]
        channel: str = meta["channel"]
        body = bytes(response.body)
        blocked = classify_block(response.status, plain_headers(response), body, expect_json=True)
        result = parse_channel_body(channel, body, check.tid) if blocked is None and response.status == 200 else None
        answer = interpret(channel, response.status, plain_headers(response), body, result, response.url)
        yield from self._evidence(response, answer, check.tid)
        if meta.get("gap"):
            yield from self._gap_page(check, channel, meta["page"], meta["walked"], answer)
            return
        check.record(answer)
        if not check.pending:
            yield from self._finish(check)

    def channel_failed(self, failure: Failure) -> Iterator[Any]:
        """A list channel request failed outright."""
        request = failure.request  # type: ignore[attr-defined]
        meta = request.meta
        check: SourceCheck = meta["check"]
        answer = failed_answer(meta["channel"], _failure_text(failure), request.url)
        if meta.get("gap"):
            yield from self._gap_page(check, meta["channel"], meta["page"], meta["walked"], answer)
            return
        check.record(answer)
        if not check.pending:
            yield from self._finish(check)

    # --- outcome -------------------------------------------------------------------------------

    def _evidence(self, response: Response, answer: ChannelAnswer, tid: str) -> Iterator[CapturedPageItem]:
        if answer.status in ("blocked", "parse_failed"):
            self._stat(f"{answer.status}_pages")
            yield capture_item(response, answer.status, answer.channel, answer.error, tid)

    def _finish(self, check: SourceCheck) -> Iterator[Any]:
        decision = check.decide()
        tid = check.tid
        if decision.items:
            # First, so the listing is stored before any article request of this check can fail.
            page = AccountPage(tid=tid, name=decision.name, items=decision.items)
            yield ListingItem(source_tid=tid, page=page, fetched_at=_now())
        outcomes = [
            ChannelOutcome(a.channel, a.status, a.error, a.http_status, len(a.items),
                           len(decision.drift.get(a.channel, [])))
            for a in check.answers.values()
        ]
        yield ChannelReportItem(tid, outcomes, decision.active_channel, decision.cross_checked)
        if decision.cross_checked:
            self._stat("cross_checks")
        if decision.status == "degraded":
            self._stat("degraded")
            logger.error("source {} DEGRADED: {} ({} items through the fallback)", tid, decision.error,
                         len(decision.items))
        elif decision.status == "ok" and check.last_status in ("degraded", "blocked"):
            logger.info("source {} recovered: the {} works again", tid, CHANNEL_NAMES[PRIMARY])
        elif decision.status == "blocked":
            self._stat("blocked_sources")
            logger.error("source {} BLOCKED on every channel: {}", tid, decision.error)
        if decision.drift:
            missed = sorted({i for ids in decision.drift.values() for i in ids})
            self._stat("drift", len(missed))
            logger.warning("source {} cross-check: {} item(s) one channel listed and another missed ({})", tid,
                           len(missed), ", ".join(f"{CHANNEL_NAMES[c]} missed {len(v)}"
                                                  for c, v in sorted(decision.drift.items())))
        if decision.status == "empty":
            logger.warning("source {} lists NOTHING on any channel: markup changed or account emptied?", tid)
        if not decision.ok:
            self._stat("source_errors")
            logger.warning("source {}: {} ({})", tid, decision.status, decision.error)
        counted = decision.ok or decision.status == "empty"
        yield SourceCheckItem(tid, decision.status, decision.error, len(decision.items) if counted else None,
                              decision.name)
        articles = [i for i in decision.items if i.item_type == "article"]
        yield from self._maybe_walk_back(check, decision.items)
        yield from self.spider._fetch_missing(tid, articles)

    # --- no silent gaps ------------------------------------------------------------------------

    def _walk_channel(self, check: SourceCheck) -> str | None:
        for channel in (LISTAPI, APPLIST):
            answer = check.answers.get(channel)
            if check.available(channel) and (answer is None or answer.status not in ("blocked", "http_error")):
                return channel
        return None

    def _maybe_walk_back(self, check: SourceCheck, items: list[ListedItem]) -> Iterator[Any]:
        if not check.has_history or not items or check.started_at is None:
            return
        assert self.spider.catalog is not None
        if self.spider.catalog.known(check.tid, [i.id for i in items], check.started_at):
            return
        self._stat("overflow")
        channel = self._walk_channel(check)
        if channel is None:
            yield self._gap(check, 0, items, "everything listed is new and no list channel can page back")
            return
        answered = check.answers.get(channel)
        page = 2 if answered is not None and answered.works else 1
        logger.warning("source {}: everything listed is new; paging back through the {}", check.tid,
                       CHANNEL_NAMES[channel])
        request = self._request(check, channel, page, gap=True)
        request.meta["walked"] = 0
        yield request

    def _gap_page(self, check: SourceCheck, channel: str, page: int, walked: int,
                  answer: ChannelAnswer) -> Iterator[Any]:
        walked += 1
        self._stat("overflow_pages")
        tid = check.tid
        if answer.status == "empty":
            return  # the whole history is listed: nothing older to miss
        if not answer.works:
            yield self._gap(check, walked, [], f"paging back stopped: {answer.error or answer.status}")
            return
        yield ListingItem(source_tid=tid, page=AccountPage(tid=tid, name=answer.name, items=answer.items),
                          fetched_at=_now())
        yield from self.spider._fetch_missing(tid, [i for i in answer.items if i.item_type == "article"])
        assert self.spider.catalog is not None and check.started_at is not None
        if self.spider.catalog.known(tid, [i.id for i in answer.items], check.started_at):
            self._stat("overflow_closed")
            logger.info("source {}: gap closed after {} more page(s)", tid, walked)
            return
        if walked >= self.gap_pages:
            yield self._gap(check, walked, answer.items,
                            f"still no known item after {walked} page(s) (HAOWATCH_GAP_PAGES)")
            return
        request = self._request(check, channel, page + 1, gap=True)
        request.meta["walked"] = walked
        yield request

    def _gap(self, check: SourceCheck, walked: int, items: list[ListedItem], reason: str) -> GapItem:
        self._stat("gaps")
        logger.error("source {}: articles may be MISSING: {}", check.tid, reason)
        return GapItem(check.tid, walked, len(items), _oldest(items), reason)


def _oldest(items: list[ListedItem]) -> datetime | None:
    times = [i.published_at for i in items if i.published_at is not None]
    return min(times) if times else None


def _failure_text(failure: Failure) -> str:
    value = failure.value
    response = getattr(value, "response", None)
    if response is not None:
        return f"HTTP {response.status}"
    return f"{type(value).__name__}: {value}"[:300]
