"""Typed items: what spiders hand to the pipelines, and the pipelines to ``db/``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crawler.extract.types import AccountPage, ArticlePage


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


@dataclass(slots=True)
class SourceCheckItem:
    """The outcome of checking one source: ``ok`` or why not."""

    tid: str
    status: str  # ok | empty | parse_failed | not_found | http_error | error
    error: str | None = None
    item_count: int | None = None
    name: str | None = None
    wemedia_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"
