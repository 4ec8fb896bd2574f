"""The records ``db/`` writes and reads: plain dataclasses, independent of how pages are parsed.

The crawler maps its page results to these in one place (``crawler/pipelines.py``); rows read back
come as these classes through psycopg's ``class_row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """One link shown around an article, as stored in ``article_links``."""

    block: str
    position: int
    url: str
    title: str | None = None
    module: str | None = None
    docid: str | None = None  # the linked article's docid (``target_docid``), when it is one
    source: str | None = None  # the linked item's publisher (``source_name``)
    published_at: datetime | None = None  # when the page says the item was published (``shown_at``)


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What an article page says about its account: stored as an ``account_snapshots`` row."""

    tid: str | None = None
    name: str | None = None
    wemedia_id: str | None = None
    article_count: int | None = None
    follower_count: int | None = None


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """One fetched article, as stored in ``articles`` (with its links and account snapshot)."""

    docid: str
    url: str
    title: str
    published_at: datetime | None
    ip_location: str | None
    account: AccountFacts
    body_paragraphs: list[str]
    body_text: str
    body_html: str
    images: list[str] = field(default_factory=list)
    author_statement: str | None = None
    links: list[LinkRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ListedRecord:
    """One item an account page (or the list API) listed, as stored in ``listed_items``."""

    item_type: Literal["article", "video"]
    id: str
    url: str
    title: str | None = None
    published_at: datetime | None = None
    thumbnail: str | None = None


@dataclass(frozen=True, slots=True)
class CrawlSource:
    """What a crawl needs to know about a source it checks."""

    tid: str
    name: str | None
    wemedia_id: str | None


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A source whose last check found its feed empty or not understood."""

    tid: str
    name: str | None
    last_status: str
    last_error: str | None
