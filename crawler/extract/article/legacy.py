"""The 2019 legacy 网易订阅 template (``dy.163.com/v2/article/detail/…``)."""

from __future__ import annotations

import re

from lxml import etree

from crawler.extract.article.document import Page, child
from crawler.extract.article.skeleton import ArticleTemplate, Facts, Located
from crawler.extract.article.truncation import BodyMarks
from crawler.extract.common import has_marker, has_token, iter_document, parse_time, text_of
from crawler.extract.types import AccountInfo


def _title(page: Page) -> etree._Element | None:
    """``//div[cls('article_title')]/h2``, first match."""
    for h2 in iter_document(page.doc, "h2"):
        parent = h2.getparent()
        if parent is not None and parent.tag == "div" and has_token(parent.get("class"), "article_title"):
            return h2
    return None


def _time_spans(page: Page) -> list[etree._Element]:
    """``//div[cls('share_box')]/p[cls('time')]/span``."""
    spans: list[etree._Element] = []
    for span in iter_document(page.doc, "span"):
        p = span.getparent()
        if p is None or p.tag != "p" or not has_token(p.get("class"), "time"):
            continue
        div = p.getparent()
        if div is not None and div.tag == "div" and has_token(div.get("class"), "share_box"):
            spans.append(span)
    return spans


def _column(page: Page) -> etree._Element | None:
    """``//div[cls('colum_info')][h4]``, first match."""
    for div in iter_document(page.doc, "div"):
        if has_token(div.get("class"), "colum_info") and child(div, "h4") is not None:
            return div
    return None


class LegacyTemplate(ArticleTemplate):
    """``.article_title h2``, ``.share_box p.time span``, ``#content``, ``.colum_info``."""

    name = "legacy"
    marks = BodyMarks(re.compile(rb"id=[\"']content[\"']"), (b'class="statement"', b"post_comment"))

    def detect(self, page: Page) -> bool:
        return (
            has_marker(page.text, "article_title")
            and _title(page) is not None
            and page.first_with_id("div", "content") is not None
        )

    def locate(self, page: Page) -> Located:
        container = page.first_with_id("div", "content")  # //div[@id='content']
        return Located(container, text_of(_title(page)) or page.head("og:title") or "")

    def default_base(self, docid: str) -> str:
        return f"https://dy.163.com/v2/article/detail/{docid}.html"

    def facts(self, page: Page, located: Located, base: str) -> Facts:
        spans = [text_of(s) for s in _time_spans(page)]
        spans = [s for s in spans if s and s != "·"]
        column = _column(page)
        account = AccountInfo()
        if column is not None:
            name, tagline = child(column, "h4"), child(column, "p")
            account.name = text_of(name) or None
            account.tagline = text_of(tagline) or None
        if account.name is None and len(spans) > 1:
            account.name = spans[1]
        return Facts(parse_time(spans[0]) if spans else None, None, account)
