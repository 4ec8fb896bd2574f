"""Editorial news templates before 2021: 2019–2020 (``post_content_main``) and 2015–2016 (``ep-content-main``).

URLs ``https://<channel>.163.com/<yy>/<mmdd>/<hh>/<DOCID>.html``. The article text is ``#endText``
(in 2019–2020 inside ``div.post_body`` with the toolbar: comment count, share bar, font size);
time and source in ``.post_time_source`` / ``.ep-time-soure`` with the source in
``a#ne_article_source``. Meta titles can be cut short by unescaped quotes: the visible ``h1`` wins.
"""

from __future__ import annotations

import re
from typing import ClassVar

from lxml import etree

from crawler.extract.article.desktop import trending
from crawler.extract.article.document import Page
from crawler.extract.article.skeleton import ArticleTemplate, Facts, Located
from crawler.extract.article.truncation import BodyMarks
from crawler.extract.common import drop, iter_document, norm, parse_time, text_of
from crawler.extract.types import AccountInfo, Link
from crawler.ids import docid_from_url

_EDITORIAL_URL = re.compile(
    r"^https?://([a-z0-9-]+(?:\.[a-z0-9-]+)*\.163\.com)(/\d{2}/\d{4}/\d{2}/[0-9A-V]{8}[0-9A-Z]{8}\.html)"
)
_CONFIG_DOCID = re.compile(r"""["']?docId["']?\s*[:=]\s*["']([^"']{0,64})["']""")
_CONFIG_DOCID_BYTES = re.compile(_CONFIG_DOCID.pattern.encode())
_TITLE_SUFFIX = re.compile(r"_(?:网易|手机网易网)[^_]*$")
_SOURCE_LABEL = re.compile(r"(?:本文)?来源\s*[:：]\s*(.+)$")
# Boxes inside #endText that are not article text. Class tokens: the source/editor line, ads,
# the video player's caption and playlist, recommendation boxes of the CMS.
_NOT_TEXT_CLASSES = frozenset(
    {"ep-source", "ep-editor", "gg200x300", "gg300", "video-info", "video-list", "biaoqian", "related", "ep-keywords"}
)
# A block opening with one of these headings is a recommendation box (延伸阅读, 延伸·推荐, …).
_BOX_HEADING = re.compile(
    r"^[【\[(（]?\s*(?:延伸\s*[·・.]?\s*(?:阅读|推荐)|相关(?:阅读|新闻|报道|推荐|链接)|推荐阅读|重点推荐|热点推荐|"
    r"精彩推荐|更多精彩|猜你喜欢|专题)\s*[】\])）]?\s*(?:[:：]|$)"
)
_TEXT_MARKERS = ("endText", "post_text", "end-text")
_BOX_TAGS = frozenset(
    {"p", "div", "table", "ul", "ol", "pre", "section", "blockquote", "dl", "center", "h2", "h3", "h4"}
)
_LINK_SHARE = 0.85  # a block whose text is (nearly) all link text is a list of links, not prose


def _chars(text: str) -> int:
    return len("".join(text.split()))


def _link_chars(el: etree._Element) -> int:
    return sum(_chars("".join(a.itertext())) for a in el.iter("a") if a.get("href"))


def _is_box(el: etree._Element) -> bool:
    """A recommendation box, link list or other non-text block inside the article text."""
    classes = el.get("class")
    if classes and not _NOT_TEXT_CLASSES.isdisjoint(classes.split()):
        return True
    if el.get("datatype") == "specialtag":  # the CMS's inline "推荐" box
        return True
    if el.tag not in _BOX_TAGS:
        return False
    text = "".join(el.itertext())
    total = _chars(text)
    if not total:
        return False
    if _BOX_HEADING.match(norm(text)):
        return True
    return _link_chars(el) >= _LINK_SHARE * total


def _drop_boxes(root: etree._Element) -> None:
    for el in list(root):
        if not isinstance(el.tag, str):
            continue
        if _is_box(el):
            drop(el)
        else:
            _drop_boxes(el)


class EditorialTemplate(ArticleTemplate):
    """The 2019–2020 editorial template: ``div.post_content_main`` > ``h1``, ``.post_time_source``, ``#endText``."""

    name = "editorial_2019"
    marks = BodyMarks(
        re.compile(rb"id=[\"']endText[\"']|class=[\"'][^\"']*\b(?:post_text|end-text)\b"),
        # The source/editor line closing the text, the share bar, comments, the right-hand column.
        (b"ep-source", b"ep-editor", b"post_btmshare", b"post_comment", b"post_end", b"sharecommend-wrap",
         b"tiePostBox", b"ep-share-end", b"ep-keywords", b"post_content_side", b"ep-content-side",
         b"epContentRight"),
    )  # fmt: skip
    main_classes: ClassVar[tuple[str, ...]] = ("post_content_main", "ep-content-main")
    time_classes: ClassVar[tuple[str, ...]] = ("post_time_source", "ep-time-soure", "ep-time-source")

    def detect(self, page: Page) -> bool:
        if not page.has(*_TEXT_MARKERS):
            return False
        if page.first_with_id("div", "endText") is not None:
            return True
        # Without the id, the text's own class names it, inside the template's wrapper.
        return self._text(page) is not None and (self._main(page) is not None or self._time_source(page) is not None)

    def _text(self, page: Page) -> etree._Element | None:
        """``#endText``, else ``div.post_text`` or ``div.end-text``."""
        found = page.first_with_id("div", "endText")
        if found is None:
            found = page.first_with_class("div", "post_text")
        return found if found is not None else page.first_with_class("div", "end-text")

    def _main(self, page: Page) -> etree._Element | None:
        for token in self.main_classes:
            if (found := page.first_with_class("div", token)) is not None:
                return found
        return page.first_with_id("div", "epContentLeft")

    def _heading(self, page: Page, container: etree._Element | None) -> etree._Element | None:
        scopes = [self._main(page)]
        for scope in scopes:
            if scope is not None:
                heading = next((h for h in scope.iter("h1") if text_of(h)), None)
                if heading is not None:
                    return heading
        # No known wrapper: the first headline before the text.
        for h1 in iter_document(page.doc, "h1"):
            if container is not None and any(parent is container for parent in h1.iterancestors()):
                break
            if text_of(h1):
                return h1
        return None

    def locate(self, page: Page) -> Located:
        container = self._text(page)
        heading = self._heading(page, container)
        title = text_of(heading) or page.head("og:title") or _TITLE_SUFFIX.sub("", text_of(page.doc.find("head/title")))
        return Located(container, title, heading)

    def own_docids(self, page: Page, located: Located) -> list[str | None]:
        """The ``docId`` of the page's comment widget configuration (links to comment pages name other threads)."""
        text = page.text
        if isinstance(text, bytes):
            found = _CONFIG_DOCID_BYTES.search(text)
            return [found.group(1).decode("utf-8", "replace")] if found else []
        match = _CONFIG_DOCID.search(text)
        return [match.group(1)] if match else []

    def canonical_url(self, page: Page, docid: str, url: str | None) -> str:
        for source in (page.head("link:canonical"), page.head("og:url"), url):
            match = _EDITORIAL_URL.match(source.strip()) if source else None
            if match and docid_from_url(match.group(0)) == docid:
                return f"https://{match.group(1)}{match.group(2)}"
        return super().canonical_url(page, docid, url)

    def links(self, page: Page, located: Located, base: str) -> list[Link]:
        return trending(page, base)  # 为您推荐, when the saved copy has it filled in

    def _time_source(self, page: Page) -> etree._Element | None:
        for token in self.time_classes:
            if (found := page.first_with_class("div", token)) is not None:
                return found
        return None

    def facts(self, page: Page, located: Located, base: str) -> Facts:
        line = self._time_source(page)
        published = parse_time(page.head("article:published_time")) or parse_time(text_of(line))
        return Facts(published, None, AccountInfo(name=self._source(page, line)))

    def _source(self, page: Page, line: etree._Element | None) -> str | None:
        """The news source: ``a#ne_article_source``, else the text after 来源 in the time line or source line."""
        if name := text_of(page.first_with_id("a", "ne_article_source")):
            return name
        lines = [line, self._source_line(page)]
        for holder in lines:
            match = _SOURCE_LABEL.search(text_of(holder)) if holder is not None else None
            if match and (name := norm(match.group(1).replace("举报", ""))):
                return name
        return None

    def _source_line(self, page: Page) -> etree._Element | None:
        """``div.ep-source`` (本文来源：… 责任编辑：…): its first span holds the source."""
        found = page.first_with_class("div", "ep-source")
        return next(found.iter("span"), found) if found is not None else None

    def clean_body(self, located: Located) -> None:
        if located.container is not None:
            _drop_boxes(located.container)


class Editorial2015Template(EditorialTemplate):
    """The 2015–2016 editorial template: ``div.ep-content-main`` > ``h1#h1title``, ``.ep-time-soure``, ``#endText``."""

    name = "editorial_2015"
    main_classes = ("ep-content-main", "post_content_main")
    time_classes = ("ep-time-soure", "ep-time-source", "post_time_source")

    def detect(self, page: Page) -> bool:
        if not page.has(*_TEXT_MARKERS) or not page.has("ep-content-main", "ep-time-so"):
            return False
        wrapped = any(
            page.first_with_class("div", token) is not None for token in ("ep-content-main", *self.time_classes)
        )
        return wrapped and super().detect(page)
