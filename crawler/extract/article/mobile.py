"""The mobile template (``m.163.com`` / ``3g.163.com``)."""

from __future__ import annotations

from crawler.extract.article.document import Page, find, has_class, in_section
from crawler.extract.article.skeleton import ArticleTemplate, Facts, Located, make_link
from crawler.extract.article.truncation import BodyMarks
from crawler.extract.common import clean_link, first, has_marker, has_token, iter_document, norm, parse_time, text_of
from crawler.extract.types import AccountInfo, Link
from crawler.ids import TID_RE, tid_from_url


def _related(page: Page, base: str | None) -> list[Link]:
    links: list[Link] = []
    # //section[cls('recommend')]//li[cls('recommend-item')]
    for li in iter_document(page.doc, "li"):
        if not has_token(li.get("class"), "recommend-item") or not in_section(li, "recommend"):
            continue
        if {"ad", "recommend-ad"}.intersection((li.get("class") or "").split()):
            continue
        anchor = next((a for a in li.iterdescendants("a") if a.get("href") is not None), None)  # .//a[@href]
        url = clean_link(anchor.get("href"), base) if anchor is not None else None
        if not url or anchor is None:
            continue
        title = text_of(next(li.iterdescendants("h4"), None)) or norm(anchor.get("title"))  # .//h4
        source = text_of(  # .//*[cls('s-source')]
            next((el for el in li.iterdescendants() if has_token(el.get("class"), "s-source")), None)
        )
        links.append(make_link("related", len(links) + 1, url, title, source=source))
    return links


class MobileTemplate(ArticleTemplate):
    """``h1.article-title``, ``a.author-homePage``, ``.s-time``, ``section.article-body``; ids on ``<html>``."""

    name = "mobile"
    marks = BodyMarks.for_class("article-body", (b"article-footer", b"</article>", b'class="recommend'))

    def detect(self, page: Page) -> bool:
        return (has_marker(page.text, "article-body") or has_marker(page.text, "article-title")) and (
            page.first_with_class("section", "article-body") is not None
            or page.first_with_class("h1", "article-title") is not None
        )

    def locate(self, page: Page) -> Located:
        container = page.first_with_class("section", "article-body")  # //section[cls('article-body')]
        heading = page.first_with_class("h1", "article-title")  # //h1[cls('article-title')]
        return Located(container, text_of(heading) or page.head("og:title") or "", heading)

    def default_base(self, docid: str) -> str:
        return f"https://m.163.com/dy/article/{docid}.html"

    def links(self, page: Page, located: Located, base: str) -> list[Link]:
        return _related(page, base)

    def facts(self, page: Page, located: Located, base: str) -> Facts:
        account = AccountInfo()
        tid = page.html_attr("data-tid")
        header = located.heading.getparent() if located.heading is not None else None
        scope = header if header is not None else page.doc
        author = first(
            (a for a in scope.iter("a") if has_class(a, "author-homePage") and text_of(a)),
            (a for a in scope.iter("a") if has_class(a, "author-homePage")),
        )
        time_box = find(scope, None, "s-time")
        if tid and TID_RE.match(tid):
            account.tid = tid
        elif author is not None and (href := clean_link(author.get("href"), base)):
            account.tid = tid_from_url(href)
        account.name = text_of(author) or page.head("article:author")
        stamp = first(time_box.iter("time")) if time_box is not None else None
        published = (
            parse_time(page.html_attr("data-publishtime"))
            or parse_time(page.head("article:published_time"))
            or parse_time(stamp.get("datetime") if stamp is not None else None)
        )
        location = text_of(find(time_box, "span")) if time_box is not None else ""
        return Facts(published, location.lstrip("·• ").strip() or None, account)
