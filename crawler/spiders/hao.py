"""The NetEase Hao spider: routes account pages, article pages and list-API pages.

Policy lives here (what to fetch, when to stop); selectors live in ``crawler/extract``; storage in
the pipelines. Every request URL is rebuilt from an id and the configured site base.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, assert_never

import scrapy
from loguru import logger
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.catalog import Catalog
from crawler.channel_router import ChannelRouter, capture_item, plain_headers
from crawler.extract.blocks import classify_block
from crawler.extract.listapi import parse_list_api_counted
from crawler.extract.types import AccountPage, ArticlePage, NotFoundPage, PageResult, UnexpectedPage
from crawler.feed import WorkFeed
from crawler.ids import account_url, article_url, canonical_article_url, list_api_url
from crawler.items import ArticleItem, FetchFailedItem, GoneItem, ListingItem
from crawler.offsite import RefusedResponse, TooLarge
from crawler.parsing import PageParser
from crawler.settings import REFERER, crawl_options
from db.records import CrawlSource

# An article page that parses as truncated or unexpected is tried this many more times at once;
# after that it stays pending and the next check of its account tries again.
PAGE_RETRIES = 2
LIST_PAGE_SIZE = 10
_HEADERS = {"Referer": REFERER}


def _now() -> datetime:
    return datetime.now(UTC)


def _content_type(response: Response) -> str | None:
    value = response.headers.get(b"Content-Type")
    return value.decode("latin-1") if value else None


class HaoSpider(scrapy.Spider):
    """One spider, three routes: ``watch`` (account pages, then new articles), ``refetch`` (given
    articles) and ``backfill`` (an account's history through the list API)."""

    name = "hao"
    channels: ChannelRouter  # set in from_crawler

    def __init__(
        self,
        *,
        mode: str = "watch",
        sources: Sequence[CrawlSource] = (),
        docids: Sequence[str] = (),
        backfill_pages: int = 0,
        parent_pid: int | None = None,
        sources_per_claim: int = 200,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.parent_pid = parent_pid
        self.sources_per_claim = sources_per_claim
        self.feed: WorkFeed | None = None
        self.sources = list(sources)
        self.docids = list(docids)
        self.backfill_pages = backfill_pages
        self.catalog: Catalog | None = None
        self.parser = PageParser(0)
        self.site_url = ""
        self.list_api_base = ""

    @classmethod
    def from_crawler(cls, crawler: scrapy.crawler.Crawler, *args: Any, **kwargs: Any) -> HaoSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        options = crawl_options(crawler.settings)
        spider.site_url = options.site_url
        spider.list_api_base = options.list_api_url
        spider.catalog = Catalog(crawler.settings.get("HAOWATCH_DATABASE_URL"), options.max_fetch_failures)
        spider.parser = PageParser(options.parse_workers)
        spider.channels = ChannelRouter(
            spider, list_api_base=spider.list_api_base, app_api_base=options.app_api_url,
            cross_check_every=options.cross_check_every, gap_pages=options.gap_pages, headers=_HEADERS,
        )
        crawler.signals.connect(spider._closed, signal=scrapy.signals.spider_closed)
        if spider.mode == "worker":
            spider.feed = WorkFeed(crawler, options, crawler.settings.get("HAOWATCH_DATABASE_URL"),
                                   make_requests=spider._work_request, parent_pid=spider.parent_pid,
                                   sources_per_claim=spider.sources_per_claim)
        return spider

    def _closed(self) -> None:
        if self.catalog:
            self.catalog.close()
        self.parser.close()

    def _stat(self, key: str, count: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"haowatch/{key}", count)

    # --- start ---------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.mode == "watch":
            for source in self.sources:
                yield self._account_request(source.tid, source.wemedia_id)
        elif self.mode == "refetch":
            assert self.catalog is not None
            for docid in self.docids:
                tid, title = self.catalog.source_of(docid)
                yield self._article_request(docid, tid, title, refetch=True)
        elif self.mode == "backfill":
            for source in self.sources:
                if source.wemedia_id:
                    yield self._list_request(source.tid, source.wemedia_id, 1)
        elif self.mode == "worker":
            assert self.feed is not None
            async for request in self.feed.requests():
                yield request
        else:
            raise ValueError(f"unknown mode {self.mode!r}")

    def _work_request(self, kind: str, work: Any) -> scrapy.Request:
        """The request for one piece of claimed work (a worker's feed calls this)."""
        if kind == "source":
            request = self._account_request(work.tid, work.wemedia_id)
            request.meta["work_key"] = ("s", work.tid)
            return request
        request = self._article_request(work.docid, work.source_tid, work.title, refetch=kind == "revisit")
        request.dont_filter = True
        request.meta["work_key"] = ("a", work.docid)
        return request

    def _account_request(self, tid: str, wemedia_id: str | None = None) -> scrapy.Request:
        return scrapy.Request(
            account_url(self.site_url, tid), callback=self.parse_account, errback=self.account_failed,
            meta={"tid": tid, "wemedia_id": wemedia_id}, priority=10, dont_filter=True, headers=_HEADERS,
        )

    def _article_request(self, docid: str, tid: str | None, title: str | None,
                         refetch: bool = False) -> scrapy.Request:
        return scrapy.Request(
            article_url(self.site_url, docid), callback=self.parse_article, errback=self.article_failed,
            meta={"docid": docid, "tid": tid, "listed_title": title, "refetch": refetch}, dont_filter=refetch,
            headers=_HEADERS,
        )

    def _list_request(self, tid: str, wemedia_id: str, page: int) -> scrapy.Request:
        return scrapy.Request(
            list_api_url(self.list_api_base, wemedia_id, page), callback=self.parse_list,
            errback=self.list_failed, meta={"tid": tid, "wemedia_id": wemedia_id, "page": page}, headers=_HEADERS,
        )

    # --- account pages -------------------------------------------------------------------------

    async def parse_account(self, response: Response) -> AsyncIterator[Any]:
        # Which channel to trust, fallbacks, cross-checks and paging back: crawler/channels.py.
        result = None
        if response.status == 200:
            # An account page parses in about a millisecond: less than a trip to a parse worker and
            # back, and the steady state is nothing but account pages.
            result = await self.parser.parse(response.body, response.url, _content_type(response), inline=True)
        async for out in self.channels.account_answered(response, result):
            yield out

    def _fetch_missing(self, tid: str, articles: Sequence[Any]) -> Iterator[scrapy.Request]:
        assert self.catalog is not None
        titles = {item.id: item.title for item in articles}
        missing = self.catalog.unfetched(tid, [item.id for item in articles])
        if self.feed is not None:
            # A worker fetches only what no other worker holds, and nothing it is fetching already.
            missing = self.feed.claim_listed(missing)
        self._stat("articles_to_fetch", len(missing))
        for docid in missing:
            request = self._article_request(docid, tid, titles.get(docid))
            request.meta["work_key"] = ("a", docid)
            yield request

    def account_failed(self, failure: Failure) -> Iterator[Any]:
        self._count_refusal(failure)
        yield from self.channels.account_failed(failure)

    def _count_refusal(self, failure: Failure) -> None:
        refusal = _refusal(failure.value)
        if refusal is not None:
            self._stat("refused_responses")
            self._stat(f"refused/{refusal}")

    # --- list API ------------------------------------------------------------------------------

    def parse_list(self, response: Response) -> Iterator[Any]:
        tid, page = response.meta["tid"], response.meta["page"]
        result, cleaned, skipped = parse_list_api_counted(response.body, tid)
        if cleaned or skipped:
            # One bad item (a NUL, a lone surrogate, no docid) is cleaned or skipped alone.
            self._stat("list_items_cleaned", cleaned)
            self._stat("list_items_skipped", skipped)
            logger.info("list API page {} for {}: {} items cleaned, {} skipped", page, tid, cleaned, skipped)
        if not isinstance(result, AccountPage):
            self._stat("errors")
            logger.warning("list API page {} for {}: {}", page, tid, result.reason)
            return
        if not result.items:
            return  # past the last page
        yield ListingItem(source_tid=tid, page=result, fetched_at=_now())
        yield from self._fetch_missing(tid, result.items)
        if page < self.backfill_pages and len(result.items) >= LIST_PAGE_SIZE:
            yield self._list_request(tid, response.meta["wemedia_id"], page + 1)

    def list_failed(self, failure: Failure) -> None:
        self._count_refusal(failure)
        self._stat("errors")
        logger.warning("list API request failed: {}", _failure_text(failure))

    # --- article pages -------------------------------------------------------------------------

    async def parse_article(self, response: Response) -> AsyncIterator[Any]:
        meta = response.meta
        docid, tid = meta["docid"], meta["tid"]
        if response.status == 404:
            yield self._gone(docid, tid, meta)
            return
        block = classify_block(response.status, plain_headers(response), bytes(response.body))
        if block is not None:
            # Asking again at once only deepens a block: the article stays pending for the next check.
            self._stat("blocked_pages")
            self._stat("errors")
            logger.warning("article {} blocked: {}; retried on a later check", docid, block.reason)
            yield capture_item(response, "blocked", "article", block.reason, tid)
            yield FetchFailedItem(docid, f"blocked: {block.reason}", tid)
            return
        result = await self.parser.parse(response.body, response.url, _content_type(response))
        match result:
            case ArticlePage() if result.docid == docid:
                yield ArticleItem(page=result, source_tid=tid, fetched_at=_now(), fetched_url=response.url)
            case NotFoundPage():
                yield self._gone(docid, tid, meta)
            case UnexpectedPage() if result.reason.startswith("blocked"):
                # Asking again at once only deepens a block: the article stays pending for the next check.
                self._stat("blocked_pages")
                self._stat("errors")
                logger.warning("article {} blocked: {}; retried on a later check", docid, result.reason)
                yield capture_item(response, "blocked", "article", result.reason, tid)
                yield FetchFailedItem(docid, result.reason, tid)
            case ArticlePage() | AccountPage() | UnexpectedPage():
                for out in self._unexpected_article_page(response, docid, tid, _what(result)):
                    yield out
            case _:
                assert_never(result)

    def _unexpected_article_page(self, response: Response, docid: str, tid: str | None, reason: str) -> Iterator[Any]:
        """Try an article whose page was not its article again at once, a few times; then count a failure."""
        self._stat("unexpected_pages")
        retry = None
        if response.request is not None:
            retry = get_retry_request(response.request, spider=self, reason=f"unexpected page: {reason}",
                                      max_retry_times=PAGE_RETRIES)
        if retry is not None:
            retry.dont_filter = True
            yield retry
        else:
            self._stat("errors")
            logger.warning("article {}: giving up for now ({}); retried on a later check", docid, reason)
            yield capture_item(response, "unexpected", "article", reason, tid)
            yield FetchFailedItem(docid, f"unexpected page: {reason}", tid)

    def _gone(self, docid: str, tid: str | None, meta: dict[str, Any]) -> GoneItem:
        return GoneItem(docid=docid, url=canonical_article_url(docid), source_tid=tid,
                        title=meta.get("listed_title"), fetched_at=_now())

    def article_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        self._count_refusal(failure)
        self._stat("errors")
        error = _failure_text(failure)
        logger.warning("article {} not fetched: {}; retried on a later check", request.meta["docid"], error)
        yield FetchFailedItem(request.meta["docid"], error, request.meta.get("tid"))


def _refusal(value: BaseException | None) -> str | None:
    """Why a response was refused (off-site, redirect loop, too large), or None for other failures."""
    if isinstance(value, RefusedResponse):
        return value.reason
    if isinstance(value, DownloadCancelledError) or (isinstance(value, IgnoreRequest)
                                                     and "DOWNLOAD_MAXSIZE" in str(value)):
        return TooLarge.reason  # Scrapy's own body and decompression limits (HAOWATCH_MAX_RESPONSE_SIZE)
    return None


def _what(result: PageResult) -> str:
    """What a page turned out to be, for a log line or an error column."""
    match result:
        case ArticlePage():
            return f"page is article {result.docid}"
        case AccountPage():
            return f"page is account {result.tid or '(unknown)'}"
        case NotFoundPage() | UnexpectedPage():
            return result.reason
        case _:
            assert_never(result)


def _failure_text(failure: Failure) -> str:
    value = failure.value
    if isinstance(value, RefusedResponse):
        return str(value)[:300]
    if _refusal(value) is not None:
        return f"too large: response body over HAOWATCH_MAX_RESPONSE_SIZE ({str(value)[:200]})"
    response = getattr(value, "response", None)
    if response is not None:
        return f"HTTP {response.status}"
    return f"{type(value).__name__}: {value}"[:300]
