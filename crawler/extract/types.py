"""Typed results of page extraction: the contract between extraction, the spiders and ``db/``.

Every parser returns one of :class:`ArticlePage`, :class:`AccountPage`, :class:`NotFoundPage`
or :class:`UnexpectedPage`; the ``kind`` field tells them apart once serialised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

LinkBlock = Literal["related", "trending", "side"]


@dataclass(slots=True)
class AccountInfo:
    """Facts about the publishing account as shown on an article page (account card, info line)."""

    tid: str | None = None
    name: str | None = None
    wemedia_id: str | None = None
    tagline: str | None = None
    article_count: int | None = None
    follower_count: int | None = None


@dataclass(slots=True)
class Link:
    """One link shown around an article (相关推荐, 热点推荐 or a sidebar module)."""

    block: LinkBlock
    position: int
    url: str
    title: str | None = None
    module: str | None = None
    docid: str | None = None
    source: str | None = None
    published_at: datetime | None = None


@dataclass(slots=True)
class ArticlePage:
    """A parsed article page: body split from everything around it."""

    docid: str
    url: str
    title: str
    published_at: datetime | None
    ip_location: str | None
    account: AccountInfo
    body_paragraphs: list[str]
    body_text: str
    body_html: str
    images: list[str] = field(default_factory=list)
    author_statement: str | None = None
    links: list[Link] = field(default_factory=list)
    template: str = "desktop"
    kind: Literal["article"] = "article"


@dataclass(slots=True)
class ListedItem:
    """One entry of an account page's list: an article (``docid``) or a video (``video_id``)."""

    item_type: Literal["article", "video"]
    id: str
    url: str
    title: str | None = None
    published_at: datetime | None = None
    thumbnail: str | None = None


@dataclass(slots=True)
class AccountPage:
    """A parsed account page (``/dy/media/T….html``)."""

    tid: str | None
    name: str | None
    items: list[ListedItem]
    url: str | None = None
    intro: str | None = None
    ip_location: str | None = None
    kind: Literal["account"] = "account"


@dataclass(slots=True)
class NotFoundPage:
    """The site's 404 page (or an empty article shell that says the item is gone)."""

    reason: str
    url: str | None = None
    kind: Literal["not_found"] = "not_found"


@dataclass(slots=True)
class UnexpectedPage:
    """Anything that is neither a usable article nor account page: block page, empty, truncated, other kind."""

    reason: str
    url: str | None = None
    kind: Literal["unexpected"] = "unexpected"


PageResult = ArticlePage | AccountPage | NotFoundPage | UnexpectedPage
