"""The one parse flow every article template follows; templates fill in where things are.

Flow: locate the body container and headline → the page's docid → links and facts around the body
(read before the body is cleaned in place) → the body → the result. A template subclasses
:class:`ArticleTemplate` and overrides only the steps where its markup differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from lxml import etree

from crawler.extract.article.document import Page
from crawler.extract.article.truncation import BodyMarks
from crawler.extract.body import Body, extract_body
from crawler.extract.types import AccountInfo, ArticlePage, Link, LinkBlock, UnexpectedPage
from crawler.ids import DOCID_RE, canonical_article_url, docid_from_url

_CHANNEL_ARTICLE = re.compile(r"^https?://www\.163\.com/([a-z0-9]+)/article/([0-9A-V]{8}[0-9A-Z]{8})\.html")


@dataclass(slots=True)
class Located:
    """Where a template found the parts of an article page."""

    container: etree._Element | None
    """The body container (cleaned in place by :func:`extract_body`)."""
    title: str
    heading: etree._Element | None = None
    contain: etree._Element | None = None
    """The element carrying the page's ids (``#contain`` of the desktop template), if any."""


@dataclass(slots=True)
class Facts:
    """What a page says about its article besides the body and links."""

    published_at: datetime | None = None
    ip_location: str | None = None
    account: AccountInfo = field(default_factory=AccountInfo)


class ArticleTemplate:
    """One article template: how to recognise it and where its parts are. :meth:`parse` is the flow."""

    name: ClassVar[str]
    marks: ClassVar[BodyMarks]

    def detect(self, page: Page) -> bool:
        """True when ``page`` is in this template."""
        raise NotImplementedError

    def locate(self, page: Page) -> Located:
        """Find the body container and the headline."""
        raise NotImplementedError

    def default_base(self, docid: str) -> str:
        """The page URL to resolve relative links against when the caller gave none."""
        return canonical_article_url(docid)

    def own_docids(self, page: Page, located: Located) -> list[str | None]:
        """Docids the page states about itself (attributes), most specific first."""
        contain = located.contain
        return [contain.get("data-docid") if contain is not None else None, page.html_attr("data-id")]

    def links(self, page: Page, located: Located, base: str) -> list[Link]:
        """Links shown around the article (related, trending, sidebar)."""
        return []

    def facts(self, page: Page, located: Located, base: str) -> Facts:
        """Publication time, IP location and account."""
        raise NotImplementedError

    def clean_body(self, located: Located) -> None:
        """Remove what sits inside the body container but is not article text (before extraction)."""

    def canonical_url(self, page: Page, docid: str, url: str | None) -> str:
        """The article's public URL: its channel's ``/article/`` URL for editorial pages, else the 网易号 one."""
        for source in (page.head("link:canonical"), page.head("og:url"), url):
            if not source:
                continue
            match = _CHANNEL_ARTICLE.match(source.strip().replace("http://", "https://", 1))
            if match and match.group(2) == docid and match.group(1) != "dy":
                return f"https://www.163.com/{match.group(1)}/article/{docid}.html"
        return canonical_article_url(docid)

    def docid(self, page: Page, located: Located, url: str | None) -> str | UnexpectedPage | None:
        """The page's docid: what it states about itself, else the URL it was fetched from, else its canonical.

        A page stating a malformed docid of its own is not taken for the article that was asked for.
        """
        stated = next((c.strip() for c in self.own_docids(page, located) if c and c.strip()), None)
        if stated is not None:
            if DOCID_RE.match(stated):
                return stated
            return UnexpectedPage(reason=f"article page with a malformed docid {stated[:40]!r}", url=url)
        for source in (url, page.head("link:canonical"), page.head("og:url")):
            if source and (docid := docid_from_url(source)):
                return docid
        return None

    def parse(self, page: Page, url: str | None) -> ArticlePage | UnexpectedPage:
        """Parse ``page`` (fetched from ``url``) in this template."""
        located = self.locate(page)
        container = located.container
        if container is None:
            return UnexpectedPage(reason="article page without a body container", url=url)
        if not located.title:
            return UnexpectedPage(reason="article page without a title", url=url)
        docid = self.docid(page, located, url)
        if docid is None:
            return UnexpectedPage(reason="article page without a docid", url=url)
        if isinstance(docid, UnexpectedPage):
            return docid
        base = url or self.default_base(docid)
        # Links and facts are read before the body is cleaned in place.
        links = self.links(page, located, base)
        facts = self.facts(page, located, base)
        self.clean_body(located)
        body = extract_body(container, base)
        if not body.paragraphs and not body.images and not body.has_video:
            return UnexpectedPage(reason="article body is empty", url=url)
        return _article(body, docid, self.canonical_url(page, docid, url), located.title, facts, links, self.name)


def _article(
    body: Body, docid: str, url: str, title: str, facts: Facts, links: list[Link], template: str
) -> ArticlePage:
    return ArticlePage(
        docid=docid,
        url=url,
        title=title,
        published_at=facts.published_at,
        ip_location=facts.ip_location,
        account=facts.account,
        body_paragraphs=body.paragraphs,
        body_text="\n".join(body.paragraphs),
        body_html=body.html,
        images=body.images,
        author_statement=body.author_statement,
        links=links,
        template=template,
    )


def make_link(
    block: LinkBlock,
    position: int,
    url: str,
    title: str | None,
    *,
    module: str | None = None,
    source: str | None = None,
    published_at: datetime | None = None,
) -> Link:
    """A :class:`Link` with its docid read off the URL."""
    return Link(
        block=block,
        position=position,
        url=url,
        title=title or None,
        module=module,
        docid=docid_from_url(url),
        source=source or None,
        published_at=published_at,
    )
