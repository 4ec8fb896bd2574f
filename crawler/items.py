"""Typed items: what the spider hands to the pipelines (which map them to ``db/`` records)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crawler.extract.types import AccountPage, ArticlePage
from db.channels import ChannelOutcome


@dataclass(slots=True)
class ArticleItem:
    """A fetched, parsed article page."""

    page: ArticlePage
    source_tid: str | None
    fetched_at: datetime
    fetched_url: str | None = None  # where the page actually came from (after NetEase's own redirects)


@dataclass(slots=True)
class GoneItem:
    """An article whose page is gone (HTTP 404 or the site's not-found page)."""

    docid: str
    url: str
    source_tid: str | None
    title: str | None
    fetched_at: datetime


@dataclass(slots=True)
class ListingItem:
    """What an account page (or a page of the list API) listed."""

    source_tid: str
    page: AccountPage
    fetched_at: datetime


@dataclass(slots=True)
class FetchFailedItem:
    """A listed article that could not be fetched this time (it is retried on the next check)."""

    docid: str
    error: str
    # The listing account: with it the failure is counted even when this item is stored before the
    # listing that named the article (items are stored concurrently).
    source_tid: str | None = None


@dataclass(slots=True)
class SourceCheckItem:
    """The outcome of checking one source: ``ok`` or why not."""

    tid: str
    status: str  # ok | degraded | blocked | empty | parse_failed | not_found | http_error | error
    error: str | None = None
    item_count: int | None = None
    name: str | None = None
    wemedia_id: str | None = None

    @property
    def ok(self) -> bool:
        # A degraded check still found the account's list (through a fallback channel).
        return self.status in ("ok", "degraded")


@dataclass(slots=True)
class ChannelReportItem:
    """How each discovery channel answered during one check of a source."""

    tid: str
    outcomes: list[ChannelOutcome]
    active_channel: str | None
    cross_checked: bool


@dataclass(slots=True)
class GapItem:
    """A check found nothing it knew and paging back could not reach stored items."""

    tid: str
    pages_walked: int
    items_found: int
    oldest_seen_at: datetime | None
    reason: str


@dataclass(slots=True)
class CapturedPageItem:
    """A response kept as evidence: it ended unexpected, parse_failed or blocked."""

    url: str
    status: int | None
    headers: dict[str, str]
    reason: str  # unexpected | parse_failed | blocked
    page_type: str  # account | article | listapi | applist | other
    detail: str | None
    source_tid: str | None
    body: bytes
