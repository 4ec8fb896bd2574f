"""Item pipelines: validate → deduplicate → store. Storage runs in worker threads with a pool."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

import psycopg
from loguru import logger
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.extract import content_hash
from crawler.extract.types import AccountPage, ArticlePage
from crawler.ids import DOCID_RE, TID_RE, canonical_article_url
from crawler.items import (
    ArticleItem,
    CapturedPageItem,
    ChannelReportItem,
    FetchFailedItem,
    GapItem,
    GoneItem,
    ListingItem,
    SourceCheckItem,
)
from crawler.logformatter import describe_item
from crawler.settings import crawl_options
from db import articles as articles_db
from db import captured as captured_db
from db import channels as channels_db
from db import sources as sources_db
from db.records import AccountFacts, ArticleRecord, LinkRecord, ListedRecord

# --- page results → db records: the one place extraction's types meet the database's ----------


def article_record(page: ArticlePage) -> ArticleRecord:
    """The stored form of a parsed article page."""
    account = page.account
    return ArticleRecord(
        docid=page.docid, url=page.url, title=page.title, published_at=page.published_at,
        ip_location=page.ip_location,
        account=AccountFacts(tid=account.tid, name=account.name, wemedia_id=account.wemedia_id,
                             article_count=account.article_count, follower_count=account.follower_count),
        body_paragraphs=page.body_paragraphs, body_text=page.body_text, body_html=page.body_html,
        images=page.images, author_statement=page.author_statement,
        links=[LinkRecord(block=link.block, position=link.position, url=link.url, title=link.title,
                          module=link.module, docid=link.docid, source=link.source, published_at=link.published_at)
               for link in page.links],
    )


def listed_records(page: AccountPage) -> list[ListedRecord]:
    """The stored form of what an account page (or the list API) listed."""
    return [ListedRecord(item_type=item.item_type, id=item.id, url=item.url, title=item.title,
                         published_at=item.published_at, thumbnail=item.thumbnail)
            for item in page.items]


class _StatsMixin:
    crawler: Crawler

    def _stat(self, key: str, count: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"haowatch/{key}", count)


class ValidatePipeline(_StatsMixin):
    """Drops items that break the contract (never stores a half-filled article)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        problem = None
        if isinstance(item, ArticleItem):
            page = item.page
            if not DOCID_RE.match(page.docid):
                problem = f"bad docid {page.docid!r}"
            elif not page.title:
                problem = "article without a title"
            elif not page.body_paragraphs and not page.images:
                problem = "article without a body"
        elif isinstance(item, GoneItem | FetchFailedItem) and not DOCID_RE.match(item.docid):
            problem = f"bad docid {item.docid!r}"
        elif isinstance(item, ListingItem | SourceCheckItem | ChannelReportItem | GapItem):
            tid = item.source_tid if isinstance(item, ListingItem) else item.tid
            if not TID_RE.match(tid):
                problem = f"bad tid {tid!r}"
        if problem:
            self._stat("errors")
            self._stat("invalid_items")
            raise DropItem(problem)
        return item


class DedupPipeline(_StatsMixin):
    """Within one crawl, each article is stored once however many URL forms or lists led to it.

    Across crawls the database decides (the docid is the primary key; re-fetched articles become
    revisions or nothing).
    """

    # A worker runs for days and revisits articles: it remembers what it stored for a while only.
    WORKER_WINDOW_SECONDS = 600.0
    WORKER_WINDOW_SIZE = 20_000

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.bounded = crawl_options(crawler.settings).worker_owner is not None
        self.seen: OrderedDict[str, float] = OrderedDict()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, ArticleItem | GoneItem):
            docid = item.page.docid if isinstance(item, ArticleItem) else item.docid
            now = time.monotonic()
            if self.bounded:
                while self.seen and (len(self.seen) >= self.WORKER_WINDOW_SIZE
                                     or now - next(iter(self.seen.values())) > self.WORKER_WINDOW_SECONDS):
                    self.seen.popitem(last=False)
            if docid in self.seen:
                self._stat("duplicates_in_crawl")
                raise DropItem(f"article {docid} already stored in this crawl")
            self.seen[docid] = now
        return item


class StorePipeline(_StatsMixin):
    """Writes each item in its own transaction, in worker threads, with bounded retries on a lost connection."""

    ATTEMPTS = 4

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        options = crawl_options(crawler.settings)
        self.database_url: str = crawler.settings.get("HAOWATCH_DATABASE_URL")
        self.revisit_ages: tuple[int, ...] = options.revisit_ages
        self.max_backoff: int = options.max_backoff
        self.capture_per_reason: int = options.capture_per_reason
        self.capture_max_age: int = options.capture_max_age
        self.owner: str | None = options.worker_owner
        self.lease_seconds: int = options.lease_seconds
        self.max_fetch_failures: int = options.max_fetch_failures
        self.fetch_retry_seconds: int = options.fetch_retry_seconds
        self.pool: ConnectionPool[Connection[DictRow]] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self.pool = ConnectionPool(
            self.database_url, min_size=1, max_size=4, open=True, timeout=60,
            # synchronous_commit=off: a database crash may forget the last fraction of a second of
            # commits, never half of one; forgotten articles are simply fetched again next check.
            kwargs={"autocommit": True, "row_factory": dict_row, "application_name": "haowatch-crawl",
                    "options": "-c synchronous_commit=off"},
            check=ConnectionPool.check_connection,
        )

    def close_spider(self) -> None:
        if self.pool is not None:
            self.pool.close()

    async def process_item(self, item: Any) -> Any:
        await asyncio.to_thread(self._store_with_retries, item)
        return item

    def _store_with_retries(self, item: Any) -> None:
        assert self.pool is not None
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                with self.pool.connection() as conn:
                    self._store(conn, item)
                return
            except psycopg.OperationalError as exc:
                # The transaction rolled back: nothing of this item was written. Try again.
                if attempt == self.ATTEMPTS:
                    self._stat("errors")
                    self._stat("store_failures")
                    logger.error("could not store {}: {}", type(item).__name__, str(exc).splitlines()[0])
                    raise DropItem(f"database unavailable: {exc}") from exc
                time.sleep(min(10.0, 0.5 * 2**attempt))
            except UnicodeEncodeError as exc:
                # Text no database can hold (a lone surrogate, a NUL): this item alone is dropped.
                self._stat("errors")
                self._stat("store_failures")
                logger.error("could not store {}: {}", describe_item(item), type(exc).__name__)
                raise DropItem(f"unstorable text: {type(exc).__name__}") from exc
            except psycopg.Error as exc:
                # Rejected by the database (a constraint, a bug): rolled back, counted, never half-written.
                self._stat("errors")
                self._stat("store_failures")
                first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
                logger.error("database refused {}: {}", type(item).__name__, first)
                if isinstance(item, SourceCheckItem):
                    self._mark_unusable(item.tid, first)
                raise DropItem(f"database refused the item: {first}") from exc

    def _mark_unusable(self, tid: str, error: str) -> None:
        # The source's row holds a value its check could not handle: mark that source alone.
        assert self.pool is not None
        try:
            with self.pool.connection() as conn:
                sources_db.mark_unusable(conn, tid, f"source row unusable: {error}")
        except psycopg.Error as exc:
            logger.error("could not mark source {} as unusable: {}", tid, (str(exc).splitlines() or [""])[0][:300])

    def _store(self, conn: Connection[DictRow], item: Any) -> None:
        if isinstance(item, ArticleItem):
            result = articles_db.store_article(
                conn, article_record(item.page), source_tid=item.source_tid,
                content_hash=content_hash(item.page.body_paragraphs), fetched_at=item.fetched_at,
                revisit_ages=self.revisit_ages, fetched_url=item.fetched_url,
            )
            key = {"new": "new_articles", "duplicate": "duplicate_articles", "updated": "updated_articles",
                   "unchanged": "unchanged_articles", "restored": "restored_articles"}[result.outcome]
            self._stat(key)
            account = item.page.account
            if item.source_tid and account.tid == item.source_tid and account.wemedia_id:
                sources_db.set_account_facts(conn, item.source_tid, account.name, account.wemedia_id)
            if result.outcome == "updated":
                logger.info("article {} changed (revision {})", item.page.docid, result.revision)
        elif isinstance(item, GoneItem):
            if articles_db.mark_gone(conn, item.docid, source_tid=item.source_tid, url=item.url, title=item.title,
                                     seen_at=item.fetched_at):
                self._stat("deleted_articles")
                logger.info("article {} is gone: marked deleted", item.docid)
        elif isinstance(item, ListingItem):
            self._stat("listed_new_items", articles_db.record_listing(
                conn, item.source_tid, listed_records(item.page), item.fetched_at, claimed_by=self.owner,
                lease_seconds=self.lease_seconds))
        elif isinstance(item, FetchFailedItem):
            listed_by = (item.source_tid, canonical_article_url(item.docid)) if item.source_tid else None
            articles_db.record_fetch_failure(conn, item.docid, item.error, listed_by=listed_by,
                                             max_failures=self.max_fetch_failures,
                                             retry_seconds=self.fetch_retry_seconds,
                                             # A block is the site's, not the article's: no reason to give up.
                                             counted=not item.error.startswith("blocked"))
        elif isinstance(item, ChannelReportItem):
            channels_db.record_channels(conn, item.tid, item.outcomes, active_channel=item.active_channel,
                                        cross_checked=item.cross_checked)
        elif isinstance(item, GapItem):
            channels_db.record_gap(conn, item.tid, pages_walked=item.pages_walked, items_found=item.items_found,
                                   oldest_seen_at=item.oldest_seen_at, reason=item.reason)
        elif isinstance(item, CapturedPageItem):
            if captured_db.capture(conn, url=item.url, status=item.status, headers=item.headers, reason=item.reason,
                                   page_type=item.page_type, detail=item.detail, source_tid=item.source_tid,
                                   body=item.body, per_reason=self.capture_per_reason,
                                   max_age_seconds=self.capture_max_age):
                self._stat("captured_pages")
        elif isinstance(item, SourceCheckItem):
            with conn.transaction():
                sources_db.record_check(conn, item.tid, ok=item.ok, status=item.status, error=item.error,
                                        item_count=item.item_count, max_backoff_seconds=self.max_backoff,
                                        checked_by=self.owner)
                if item.name or item.wemedia_id:
                    sources_db.set_account_facts(conn, item.tid, item.name, item.wemedia_id)
            if item.status in ("empty", "parse_failed"):
                for problem in sources_db.sources_needing_attention(conn, [item.tid]):
                    logger.error(
                        "SOURCE {} ({}) IS {}: {} — its feed may be silently broken (site markup changed?)",
                        problem.tid, problem.name or "?", problem.last_status.upper(), problem.last_error,
                    )
