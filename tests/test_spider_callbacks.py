"""The spider's callbacks fed every kind of page in-process: what each yields, and what gets recorded.

Each callback is called directly with a Scrapy ``HtmlResponse`` carrying its ``Request`` (no
network, no reactor). Whatever page comes back (an article, an account page, the site's not-found
page, something unexpected, an empty body, another article than the one asked for) the callback
answers with items, never an exception; the failure bookkeeping then reaches the database through
the real store pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.ids import account_url, article_url
from crawler.items import ArticleItem, CapturedPageItem, FetchFailedItem, GoneItem, ListingItem, SourceCheckItem
from crawler.pipelines import StorePipeline
from crawler.settings import CrawlOptions, scrapy_settings
from crawler.spiders.hao import PAGE_RETRIES, HaoSpider
from db import articles as articles_db
from db import sources as sources_db
from db.connection import connect
from db.records import ListedRecord
from tests.helpers import one
from tests.standin import TEMPLATE
from tests.standin_pages import render_account_page, render_article_page, render_not_found_page

SITE = "https://www.163.com"
TID = "T1600000000001"
DOCID = "KJ0SPDR10514R9KQ"
OTHER_DOCID = "KJ0OTHR10514R9KQ"
LISTED = ["KJ0LST010514R9KQ", "KJ0LST020514R9KQ"]
FIXTURES = Path(__file__).parent / "fixtures"


def _article(docid: str) -> bytes:
    page = render_article_page(TEMPLATE.read_text(encoding="utf-8"), docid, "一篇文章",
                               ["第一段正文，内容足够长，足以被认出是正文。", "第二段正文，也是正文内容。"],
                               TID, "测试账号", "2026-01-02 03:04:05")
    return page.encode("utf-8")


def _account() -> bytes:
    items = [{"docid": d, "title": f"文章{d}", "time": "2026-01-02 03:04", "thumbnail": None} for d in LISTED]
    return render_account_page(TID, "测试账号", items).encode("utf-8")


# Every kind of page either URL can answer with: (status, body).
PAGES: dict[str, tuple[int, bytes]] = {
    "article": (200, _article(DOCID)),
    "wrong_docid": (200, _article(OTHER_DOCID)),
    "account": (200, _account()),
    "not_found": (200, render_not_found_page().encode("utf-8")),
    "http_404": (404, b"<html><body>Not Found</body></html>"),
    "unexpected": (200, (FIXTURES / "other" / "other_kind_channel" / "page.html").read_bytes()),
    "empty": (200, b""),
}


@pytest.fixture
def crawler(db_url: str) -> Crawler:
    return get_crawler(HaoSpider, scrapy_settings(CrawlOptions(site_url=SITE, parse_workers=0), db_url))


@pytest.fixture
def spider(crawler: Crawler) -> Iterator[HaoSpider]:
    spider = HaoSpider.from_crawler(crawler, mode="watch")
    yield spider
    spider._closed()


@pytest.fixture
def store(crawler: Crawler) -> Iterator[StorePipeline]:
    pipeline = StorePipeline(crawler)
    pipeline.open_spider()
    yield pipeline
    pipeline.close_spider()


@pytest.fixture
def source(db_url: str) -> str:
    """A watched source whose last check was fine, with two listed articles not yet fetched."""
    with connect(db_url) as conn:
        sources_db.add_source(conn, TID, 1800)
        sources_db.record_check(conn, TID, ok=True, status="ok", error=None, item_count=2, max_backoff_seconds=3600)
        articles_db.record_listing(conn, TID, [ListedRecord("article", d, article_url(SITE, d)) for d in [DOCID]],
                                   datetime.now(UTC))
    return TID


def _response(request: Request, kind: str) -> HtmlResponse:
    status, body = PAGES[kind]
    return HtmlResponse(url=request.url, status=status, body=body, encoding="utf-8", request=request)


def _run(outputs: AsyncIterator[Any]) -> list[Any]:
    """What a callback yields, without the captured pages it keeps as evidence."""
    async def collect() -> list[Any]:
        return [out async for out in outputs]

    return [out for out in asyncio.run(collect()) if not isinstance(out, CapturedPageItem)]


def _answer_other_channels(spider: HaoSpider, outputs: list[Any]) -> list[Any]:
    """Answer the fallback channels an account check asks (the app list, the list API) with 404s, so
    the check finishes on what the account page itself said."""
    done: list[Any] = []
    pending = list(outputs)
    while pending:
        out = pending.pop(0)
        if isinstance(out, Request) and out.callback == spider.channels.channel_answered:
            pending += list(spider.channels.channel_answered(_response(out, "http_404")))
        else:
            done.append(out)
    return done


def _check_account(spider: HaoSpider, kind: str) -> list[Any]:
    return _answer_other_channels(spider, _run(spider.parse_account(_response(_account_request(spider), kind))))


def _save(store: StorePipeline, items: list[Any]) -> None:
    for item in items:
        asyncio.run(store.process_item(item))


def _account_request(spider: HaoSpider) -> Request:
    request = spider._account_request(TID)
    assert request.url == account_url(SITE, TID)
    return request


def _article_request(spider: HaoSpider) -> Request:
    return spider._article_request(DOCID, TID, "一篇文章")


def _stat(crawler: Crawler, key: str) -> int:
    assert crawler.stats is not None
    return int(crawler.stats.get_value(f"haowatch/{key}", 0))


# --- account URL ---------------------------------------------------------------------------------


def test_account_url_answering_with_its_account_page_lists_and_fetches(spider: HaoSpider, source: str) -> None:
    out = _check_account(spider, "account")
    listing = [o for o in out if isinstance(o, ListingItem)]
    checks = [o for o in out if isinstance(o, SourceCheckItem)]
    requests = [o for o in out if isinstance(o, Request)]
    assert len(listing) == 1 and [i.id for i in listing[0].page.items] == LISTED
    assert [(c.tid, c.status, c.item_count) for c in checks] == [(TID, "ok", 2)]
    # The two listed articles plus the one listed earlier and never fetched.
    assert sorted(r.meta["docid"] for r in requests) == sorted([*LISTED, DOCID])
    assert all(r.callback == spider.parse_article for r in requests)


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("article", "parse_failed", "answered with a article"),
        ("wrong_docid", "parse_failed", "answered with a article"),
        ("not_found", "not_found", ""),
        ("http_404", "not_found", "404"),
        ("unexpected", "parse_failed", "not understood"),
        ("empty", "blocked", "empty 200 answer"),
    ],
)
def test_account_url_answering_with_another_kind_of_page_fails_the_check(
    spider: HaoSpider, crawler: Crawler, store: StorePipeline, source: str, db_url: str,
    kind: str, status: str, error: str,
) -> None:
    out = _check_account(spider, kind)
    checks = [o for o in out if isinstance(o, SourceCheckItem)]
    assert len(checks) == 1, out
    assert not [o for o in out if isinstance(o, ListingItem)], out
    # Nothing new is fetched; only the article listed on an earlier check is still owed a fetch.
    assert {o.meta["docid"] for o in out if isinstance(o, Request)} <= {DOCID}, out
    check = checks[0]
    assert (check.tid, check.status, check.ok) == (TID, status, False)
    assert error in (check.error or "")
    # The failure is recorded: the source no longer looks fine and backs off as failing.
    _save(store, out)
    with connect(db_url) as conn:
        row = one(conn, "SELECT last_status, last_error, consecutive_failures FROM sources WHERE tid = %s", (TID,))
    assert (row["last_status"], row["consecutive_failures"]) == (status, 1)
    assert error in (row["last_error"] or "")


def test_an_article_page_at_the_account_url_is_counted_as_unexpected(spider: HaoSpider, crawler: Crawler,
                                                                     source: str) -> None:
    """The reported crash: an account URL answering with an article page raised AttributeError."""
    out = _check_account(spider, "article")
    checks = [o for o in out if isinstance(o, SourceCheckItem)]
    assert [(c.status, c.ok) for c in checks] == [("parse_failed", False)]


# --- article URL ---------------------------------------------------------------------------------


def test_article_url_answering_with_its_article_yields_it(spider: HaoSpider, source: str) -> None:
    out = _run(spider.parse_article(_response(_article_request(spider), "article")))
    assert len(out) == 1 and isinstance(out[0], ArticleItem)
    assert (out[0].page.docid, out[0].source_tid) == (DOCID, TID)


@pytest.mark.parametrize("kind", ["not_found", "http_404"])
def test_article_url_answering_not_found_marks_it_gone(spider: HaoSpider, source: str, kind: str) -> None:
    out = _run(spider.parse_article(_response(_article_request(spider), kind)))
    assert len(out) == 1 and isinstance(out[0], GoneItem)
    assert (out[0].docid, out[0].source_tid, out[0].title) == (DOCID, TID, "一篇文章")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("account", f"page is account {TID}"),
        ("wrong_docid", f"page is article {OTHER_DOCID}"),
        ("unexpected", ""),
    ],
)
def test_article_url_answering_with_another_page_is_retried_then_counted_as_a_failure(
    spider: HaoSpider, crawler: Crawler, store: StorePipeline, source: str, db_url: str, kind: str, reason: str,
) -> None:
    request = _article_request(spider)
    for attempt in range(1, PAGE_RETRIES + 1):
        out = _run(spider.parse_article(_response(request, kind)))
        assert len(out) == 1 and isinstance(out[0], Request), out
        request = out[0]
        assert request.meta["docid"] == DOCID and request.meta["retry_times"] == attempt
        assert request.dont_filter and request.callback == spider.parse_article
    out = _run(spider.parse_article(_response(request, kind)))
    assert len(out) == 1 and isinstance(out[0], FetchFailedItem), out
    failed = out[0]
    assert failed.docid == DOCID and failed.error.startswith("unexpected page:") and reason in failed.error
    assert _stat(crawler, "unexpected_pages") == PAGE_RETRIES + 1
    assert _stat(crawler, "errors") == 1
    # The failure is counted on the listed item, so the article is not re-requested forever.
    _save(store, out)
    with connect(db_url) as conn:
        row = one(conn, "SELECT fetch_failures, last_fetch_error FROM listed_items WHERE item_id = %s", (DOCID,))
    assert row["fetch_failures"] == 1 and reason in row["last_fetch_error"]


def test_article_url_answering_with_an_empty_page_is_not_asked_again_at_once(
    spider: HaoSpider, store: StorePipeline, source: str, db_url: str
) -> None:
    """An empty 200 answer looks like a block: asking again at once only deepens it."""
    out = _run(spider.parse_article(_response(_article_request(spider), "empty")))
    assert len(out) == 1 and isinstance(out[0], FetchFailedItem), out
    assert out[0].docid == DOCID and out[0].error.startswith("blocked:")
    _save(store, out)
    with connect(db_url) as conn:
        row = one(conn, "SELECT fetch_failures, pending, last_fetch_error FROM listed_items WHERE item_id = %s",
                  (DOCID,))
    # Recorded and retried later, but a block is the site's: it never counts toward giving the article up.
    assert row["fetch_failures"] == 0 and row["pending"] is True
    assert row["last_fetch_error"].startswith("blocked:")


def test_an_account_page_at_the_article_url_gives_up_after_max_failures(
    spider: HaoSpider, store: StorePipeline, source: str, db_url: str
) -> None:
    """The reported crash: an article URL answering with an account page raised, so fetch_failures
    never grew and the article was re-requested on every check forever."""
    max_failures = CrawlOptions().max_fetch_failures
    for _ in range(max_failures):
        request = _article_request(spider)
        while True:
            out = _run(spider.parse_article(_response(request, "account")))
            if not (len(out) == 1 and isinstance(out[0], Request)):
                break
            request = out[0]
        assert [type(o) for o in out] == [FetchFailedItem]
        _save(store, out)
    with connect(db_url) as conn:
        assert DOCID not in articles_db.unfetched_docids(conn, TID, [], max_failures)
        assert one(conn, "SELECT fetch_failures FROM listed_items WHERE item_id = %s", (DOCID,))["fetch_failures"] \
            == max_failures
