"""Article pages: desktop "post2020_dy" (网易号 and editorial), mobile, and the 2019 legacy template."""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from crawler.extract.body import Body, extract_body
from crawler.extract.common import (
    clean_link,
    first,
    has_marker,
    has_token,
    iter_document,
    norm,
    parse_count,
    parse_time,
    text_of,
)
from crawler.extract.types import AccountInfo, ArticlePage, Link, UnexpectedPage
from crawler.ids import (
    DOCID_RE,
    TID_RE,
    WEMEDIA_RE,
    canonical_article_url,
    docid_from_url,
    tid_from_url,
)

# Only the element kinds the parsers look up: every extra match costs a Python proxy object.
POST_TAGS = ("div", "li", "h1")
HEAD_TAGS = ("meta", "link")
SIDE_ITEMS = " side items"  # index key (never a class token): lead items and list items of sidebar modules

_BODY_MARK = {
    "desktop": re.compile(rb"class=[\"'][^\"']*\bpost_body\b"),
    "mobile": re.compile(rb"class=[\"'][^\"']*\barticle-body\b"),
    "legacy": re.compile(rb"id=[\"']content[\"']"),
}
_BODY_CLASS = {"desktop": b"post_body", "mobile": b"article-body"}
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_AFTER_BODY = {
    "desktop": (b"post_statement", b"post_comment_area", b"post_author", b"post_recommends", b"post_next"),
    "mobile": (b"article-footer", b"</article>", b'class="recommend'),
    "legacy": (b'class="statement"', b"post_comment"),
}
_DOCUMENT_END = re.compile(rb"</(?:html|body)\s*>", re.IGNORECASE)
_CHANNEL_ARTICLE = re.compile(r"^https?://www\.163\.com/([a-z0-9]+)/article/([0-9A-V]{8}[0-9A-Z]{8})\.html")
_SOURCE_TIME = re.compile(r"^(.*?)\s*(\d{4}-\d{1,2}-\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?)\s*$")


class Page:
    """A parsed document with the lookups every parser needs, each computed at most once."""

    __slots__ = ("_found", "_head", "_index", "doc", "text")

    def __init__(self, doc: etree._Element, text: str | bytes) -> None:
        self.doc = doc
        self.text = text
        self._head: dict[str, str] | None = None
        self._index: dict[str, list[etree._Element]] | None = None
        self._found: dict[str, etree._Element | None] = {}

    def first_with_class(self, tag: str, token: str) -> etree._Element | None:
        """The first ``tag`` element with class ``token`` (``//tag[cls(token)]``), memoised."""
        key = f"{tag}.{token}"
        if key not in self._found:
            self._found[key] = next(
                (el for el in iter_document(self.doc, tag) if has_token(el.get("class"), token)), None
            )
        return self._found[key]

    @property
    def index(self) -> dict[str, list[etree._Element]]:
        """Elements by class token, for every element with a ``post_…`` class (one document scan)."""
        if self._index is None:
            index: dict[str, list[etree._Element]] = {}
            side_items = index.setdefault(SIDE_ITEMS, [])
            # A C-level tag filter and a substring test beat any XPath predicate here by far.
            for el in iter_document(self.doc, *POST_TAGS):
                classes = el.get("class")
                if not classes or "post_" not in classes:
                    continue
                tokens = classes.split()
                for token in tokens:
                    index.setdefault(token, []).append(el)
                if "post_side_mod_imgnews" in tokens or "post_side_mod_item" in tokens:
                    side_items.append(el)
            self._index = index
        return self._index

    def by_class(self, token: str, tag: str | None = None) -> list[etree._Element]:
        """Elements with class ``token`` (a ``post_…`` class), optionally of one tag, in document order."""
        found = self.index.get(token, [])
        return [el for el in found if el.tag == tag] if tag else found

    def head(self, key: str) -> str | None:
        """``<meta property|name=key>`` content, or ``link:<rel>`` href, from the document head."""
        if self._head is None:
            head: dict[str, str] = {}
            container = self.doc.find("head")
            for el in container.iter(*HEAD_TAGS) if container is not None else ():
                if el.tag == "meta":
                    name = el.get("property") or el.get("name")
                    if name and name not in head and el.get("content"):
                        head[name] = norm(el.get("content"))
                elif el.get("rel") and el.get("href"):
                    head.setdefault(f"link:{el.get('rel')}", el.get("href").strip())
            self._head = head
        return self._head.get(key) or None

    def html_attr(self, name: str) -> str | None:
        """An attribute of the root ``<html>`` element."""
        return norm(self.doc.get(name)) or None


def detect_template(page: Page) -> str | None:
    """Which article template a document uses, or None when it is not an article page."""
    text = page.text
    if (has_marker(text, "post_body") or has_marker(text, "post_title")) and (
        page.by_class("post_body", "div") or page.by_class("post_title", "h1")
    ):
        return "desktop"
    if (has_marker(text, "article-body") or has_marker(text, "article-title")) and (
        _mobile_body(page) is not None or _mobile_title(page) is not None
    ):
        return "mobile"
    if has_marker(text, "article_title") and _legacy_title(page) is not None and _legacy_content(page) is not None:
        return "legacy"
    return None


def is_truncated(data: bytes, template: str) -> bool:
    """True when the document ends inside (or before) the article body, or before its own end.

    Judged on the raw bytes (scripts and styles already cut out, so markers in them cannot mislead)
    because the HTML parser silently closes whatever was left open: anything the template always
    prints after the body (disclaimer, comment area, footer) proves the body was received whole.
    """
    return not body_complete(data, template) or not document_complete(data)


def body_complete(data: bytes, template: str) -> bool:
    """True when something the template always prints after the body follows the body's start."""
    end = _body_mark_end(data, template)
    return end >= 0 and any(data.find(marker, end) >= 0 for marker in _AFTER_BODY[template])


def _body_mark_end(data: bytes, template: str) -> int:
    """``_BODY_MARK[template].search(data).end()``, or -1 when there is no match.

    For the class marks the regex backtracks through every class attribute of the page; looking at
    each occurrence of the class name instead finds the same match: the first quoted ``class``
    value holding the name as a word, ending after its last such occurrence in that value.
    """
    name = _BODY_CLASS.get(template)
    if name is None:
        match = _BODY_MARK[template].search(data)
        return match.end() if match else -1
    end = -1
    value_start = -1
    pos = data.find(name)
    while pos >= 0:
        after = pos + len(name)
        quote = max(data.rfind(b'"', 0, pos), data.rfind(b"'", 0, pos))
        if end >= 0 and quote != value_start:
            break  # past the closing quote of the value that matched
        if (
            quote >= 6
            and data[quote - 6 : quote] == b"class="
            and (data[pos - 1] not in _WORD_BYTES)
            and (after >= len(data) or data[after] not in _WORD_BYTES)
        ):
            end, value_start = after, quote
        pos = data.find(name, pos + 1)
    return end


def document_complete(data: bytes) -> bool:
    """True when the document reaches its end (``</body>`` or ``</html>``).

    A page cut after the body still lacks recommendations and sidebar links, so it is retried too.
    """
    # The closing tags are nearly always among the last few "</" of the page: try those first.
    pos = len(data)
    for _ in range(16):
        pos = data.rfind(b"</", 0, pos)
        if pos < 0:
            return False
        if _DOCUMENT_END.match(data, pos):
            return True
    return _DOCUMENT_END.search(data, 0, pos) is not None


def _docid(page: Page, contain: etree._Element | None, url: str | None) -> str | None:
    for candidate in (contain.get("data-docid") if contain is not None else None, page.html_attr("data-id")):
        if candidate and DOCID_RE.match(candidate.strip()):
            return candidate.strip()
    for source in (url, page.head("link:canonical"), page.head("og:url")):
        if source and (docid := docid_from_url(source)):
            return docid
    return None


def _canonical_url(page: Page, docid: str, url: str | None) -> str:
    for source in (page.head("link:canonical"), page.head("og:url"), url):
        if not source:
            continue
        match = _CHANNEL_ARTICLE.match(source.strip().replace("http://", "https://", 1))
        if match and match.group(2) == docid and match.group(1) != "dy":
            return f"https://www.163.com/{match.group(1)}/article/{docid}.html"
    return canonical_article_url(docid)


def _has_class(el: etree._Element, token: str) -> bool:
    classes = el.get("class")
    # The substring test settles almost every call without splitting.
    return bool(classes) and token in classes and token in classes.split()


def _find(root: etree._Element, tag: str | None = None, token: str | None = None) -> etree._Element | None:
    """First descendant of ``root`` (itself included) with the tag and/or class token."""
    for el in root.iter(tag) if tag else root.iter():
        if token is None:
            return el
        classes = el.get("class")
        if classes and token in classes and token in classes.split():
            return el
    return None


def _first_link(root: etree._Element, within: str | None = None) -> etree._Element | None:
    """The first ``a[href]`` under ``root``, preferring one inside a ``within`` element (tag)."""
    if within:
        for holder in root.iter(within):
            for anchor in holder.iter("a"):
                if anchor.get("href"):
                    return anchor
    for anchor in root.iter("a"):
        if anchor.get("href"):
            return anchor
    return None


def _link(
    block: str,
    position: int,
    url: str,
    title: str | None,
    *,
    module: str | None = None,
    source: str | None = None,
    published_at: datetime | None = None,
) -> Link:
    return Link(
        block=block,  # type: ignore[arg-type]
        position=position,
        url=url,
        title=title or None,
        module=module,
        docid=docid_from_url(url),
        source=source or None,
        published_at=published_at,
    )


def _related(page: Page, base: str | None) -> list[Link]:
    links: list[Link] = []
    for li in page.by_class("post_recommend", "li"):
        anchor = _first_link(li, "h3")
        url = clean_link(anchor.get("href"), base) if anchor is not None else None
        if not url or anchor is None:
            continue
        title = text_of(anchor) or norm(anchor.get("title"))
        line = text_of(_find(li, None, "post_recommend_time"))
        match = _SOURCE_TIME.match(line)
        source, when = (norm(match.group(1)), parse_time(match.group(2))) if match else (line, None)
        links.append(_link("related", len(links) + 1, url, title, source=source, published_at=when))
    return links


def _trending(page: Page, base: str | None) -> list[Link]:
    links: list[Link] = []
    for item in page.by_class("post_recommend_new"):
        if _has_class(item, "post_recommend_ad") or _has_class(item, "at_item"):
            continue
        parent = item.getparent()
        if parent is not None and _has_class(parent, "post_recommends_list"):
            continue  # ad slots interleaved in the related list reuse this class
        anchor = _first_link(item, "h3")
        url = clean_link(anchor.get("href"), base) if anchor is not None else None
        if not url or anchor is None:
            continue
        title = text_of(anchor) or norm(anchor.get("title"))
        source = text_of(_find(item, None, "post_recommend_source"))
        when = parse_time(text_of(_find(item, None, "post_recommend_time")))
        links.append(_link("trending", len(links) + 1, url, title, source=source, published_at=when))
    return links


def _module_title(node: etree._Element | None) -> str | None:
    while node is not None:
        if _has_class(node, "post_side_mod"):
            for child in node:
                if child.tag == "h2" and _has_class(child, "post_side_mod_title"):
                    return text_of(child) or None
        if _has_class(node, "post_side_mod_panel"):
            # Tabbed module without its own heading: the tab with the same index names the panel.
            parent = node.getparent()
            panels = [p for p in parent if _has_class(p, "post_side_mod_panel")] if parent is not None else []
            tab_mod = node.getparent()
            while tab_mod is not None and not _has_class(tab_mod, "js-tab-mod"):
                tab_mod = tab_mod.getparent()
            tabs = [t for t in tab_mod.iter() if _has_class(t, "post_side_mod_tab")] if tab_mod is not None else []
            index = panels.index(node) if node in panels else len(tabs)
            if index < len(tabs):
                return text_of(tabs[index]) or None
        if _has_class(node, "post_side"):
            return None
        node = node.getparent()
    return None


def _side(page: Page, base: str | None) -> list[Link]:
    links: list[Link] = []
    seen: dict[str | None, set[str]] = {}
    titles: dict[etree._Element, str | None] = {}
    for holder in page.by_class(SIDE_ITEMS):
        parent = holder.getparent()
        if parent not in titles:
            titles[parent] = _module_title(parent)
        module = titles[parent]
        for anchor in holder.iter("a"):
            url = clean_link(anchor.get("href"), base)
            if not url:
                continue
            # The same module is sometimes printed twice (a hidden copy for another layout).
            urls = seen.setdefault(module, set())
            if url in urls:
                continue
            urls.add(url)
            title = text_of(anchor) or norm(anchor.get("title"))
            links.append(_link("side", len(urls), url, title, module=module))
    return links


# The lookups below stand for the XPath expressions in their comments: libxml2 evaluates such
# predicates far more slowly than a walk over one tag with a C-level filter. Same results, same order.


def _mobile_body(page: Page) -> etree._Element | None:
    return page.first_with_class("section", "article-body")  # //section[cls('article-body')]


def _mobile_title(page: Page) -> etree._Element | None:
    return page.first_with_class("h1", "article-title")  # //h1[cls('article-title')]


def _legacy_title(page: Page) -> etree._Element | None:
    """``//div[cls('article_title')]/h2``, first match."""
    for h2 in iter_document(page.doc, "h2"):
        parent = h2.getparent()
        if parent is not None and parent.tag == "div" and has_token(parent.get("class"), "article_title"):
            return h2
    return None


def _legacy_content(page: Page) -> etree._Element | None:
    """``//div[@id='content']``, first match."""
    return next((div for div in iter_document(page.doc, "div") if div.get("id") == "content"), None)


def _legacy_time_spans(page: Page) -> list[etree._Element]:
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


def _legacy_column(page: Page) -> etree._Element | None:
    """``//div[cls('colum_info')][h4]``, first match."""
    for div in iter_document(page.doc, "div"):
        if has_token(div.get("class"), "colum_info") and _child(div, "h4") is not None:
            return div
    return None


def _child(el: etree._Element, tag: str) -> etree._Element | None:
    """``./tag``, first match."""
    return next(el.iterchildren(tag), None)


def _in_section(el: etree._Element, token: str) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent.tag == "section" and has_token(parent.get("class"), token):
            return True
        parent = parent.getparent()
    return False


def _mobile_related(page: Page, base: str | None) -> list[Link]:
    links: list[Link] = []
    # //section[cls('recommend')]//li[cls('recommend-item')]
    for li in iter_document(page.doc, "li"):
        if not has_token(li.get("class"), "recommend-item") or not _in_section(li, "recommend"):
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
        links.append(_link("related", len(links) + 1, url, title, source=source))
    return links


def _ip_location(info: etree._Element | None) -> str | None:
    if info is None:
        return None
    for img in info.iter("img"):
        if "iplocation" in (img.get("src") or "").lower():
            return norm(img.tail) or None
    return None


def _contain(*starts: etree._Element | None) -> etree._Element | None:
    """The ``#contain`` wrapper (ids, publish time), found by climbing from known elements."""
    for node in starts:
        while node is not None:
            if node.get("id") == "contain":
                return node
            node = node.getparent()
    return None


def _desktop_account(page: Page, contain: etree._Element | None, base: str | None) -> AccountInfo:
    account = AccountInfo()
    wemedia = norm(contain.get("data-wemediaid")) if contain is not None else ""
    account.wemedia_id = wemedia if WEMEDIA_RE.match(wemedia) else None
    card = first(page.by_class("post_wemedia"))
    info = first(page.by_class("post_info"))
    hrefs: list[str] = []
    if card is not None:
        name_holder = _find(card, None, "post_wemedia_name")
        name_anchor = _find(name_holder, "a") if name_holder is not None else None
        account.name = text_of(name_anchor if name_anchor is not None else name_holder) or None
        account.tagline = text_of(_find(card, None, "post_wemedia_title")) or None
        for token, attr in (("post_wemedia_info1", "article_count"), ("post_wemedia_info2", "follower_count")):
            holder = _find(card, None, token)
            setattr(account, attr, parse_count(text_of(_find(holder, "em"))) if holder is not None else None)
        hrefs.extend(a.get("href") for a in card.iter("a") if a.get("href"))
    source_anchor = None
    if info is not None:
        anchors = [a for a in info.iter("a") if a.get("href") and not _has_class(a, "post_jubao")]
        source_anchor = next((a for a in anchors if "/dy/media/T" in a.get("href")), None)
        if source_anchor is None and anchors:
            source_anchor = anchors[0]
        if source_anchor is not None:
            hrefs.insert(0, source_anchor.get("href"))
    for href in hrefs:
        url = clean_link(href, base)
        if url and (tid := tid_from_url(url)):
            account.tid = tid
            break
    if account.name is None and source_anchor is not None:
        account.name = text_of(source_anchor) or None
    return account


def _page(
    body: Body,
    *,
    docid: str,
    url: str,
    title: str,
    published_at: datetime | None,
    ip_location: str | None,
    account: AccountInfo,
    links: list[Link],
    template: str,
) -> ArticlePage:
    return ArticlePage(
        docid=docid,
        url=url,
        title=title,
        published_at=published_at,
        ip_location=ip_location,
        account=account,
        body_paragraphs=body.paragraphs,
        body_text="\n".join(body.paragraphs),
        body_html=body.html,
        images=body.images,
        author_statement=body.author_statement,
        links=links,
        template=template,
    )


def _checks(
    page: Page,
    container: etree._Element | None,
    title: str,
    url: str | None,
    contain: etree._Element | None = None,
) -> str | UnexpectedPage:
    """The docid, or why the page cannot be an article."""
    if container is None:
        return UnexpectedPage(reason="article page without a body container", url=url)
    if not title:
        return UnexpectedPage(reason="article page without a title", url=url)
    docid = _docid(page, contain, url)
    if docid is None:
        return UnexpectedPage(reason="article page without a docid", url=url)
    return docid


def _empty_body(body: Body) -> bool:
    return not body.paragraphs and not body.images and not body.has_video


def parse_desktop(page: Page, url: str | None) -> ArticlePage | UnexpectedPage:
    """Parse the desktop template (网易号 "post2020_dy" and editorial ``/<channel>/article/`` pages)."""
    container = first(page.by_class("post_body", "div"))
    heading = first(page.by_class("post_title", "h1"))
    title = text_of(heading) or page.head("og:title") or ""
    contain = _contain(container, heading)
    docid = _checks(page, container, title, url, contain)
    if isinstance(docid, UnexpectedPage) or container is None:
        return docid if isinstance(docid, UnexpectedPage) else UnexpectedPage(reason="no body", url=url)
    base = url or canonical_article_url(docid)
    # Links and facts are read before the body is cleaned in place.
    links = _related(page, base) + _trending(page, base) + _side(page, base)
    info = first(page.by_class("post_info"))
    published = (
        parse_time(contain.get("data-ptime") if contain is not None else None)
        or parse_time(page.head("article:published_time"))
        or parse_time(page.html_attr("data-publishtime"))
        or parse_time(text_of(info))
    )
    account = _desktop_account(page, contain, base)
    body = extract_body(container, base)
    if _empty_body(body):
        return UnexpectedPage(reason="article body is empty", url=url)
    return _page(
        body,
        docid=docid,
        url=_canonical_url(page, docid, url),
        title=title,
        published_at=published,
        ip_location=_ip_location(info),
        account=account,
        links=links,
        template="desktop",
    )


def parse_mobile(page: Page, url: str | None) -> ArticlePage | UnexpectedPage:
    """Parse the mobile template (``m.163.com`` / ``3g.163.com``)."""
    doc = page.doc
    container = _mobile_body(page)
    heading = _mobile_title(page)
    title = text_of(heading) or page.head("og:title") or ""
    docid = _checks(page, container, title, url)
    if isinstance(docid, UnexpectedPage) or container is None:
        return docid if isinstance(docid, UnexpectedPage) else UnexpectedPage(reason="no body", url=url)
    base = url or f"https://m.163.com/dy/article/{docid}.html"
    links = _mobile_related(page, base)
    account = AccountInfo()
    tid = page.html_attr("data-tid")
    header = heading.getparent() if heading is not None else None
    scope = header if header is not None else doc
    author = first(
        (a for a in scope.iter("a") if _has_class(a, "author-homePage") and text_of(a)),
        (a for a in scope.iter("a") if _has_class(a, "author-homePage")),
    )
    time_box = _find(scope, None, "s-time")
    if tid and TID_RE.match(tid):
        account.tid = tid
    elif author is not None and (href := clean_link(author.get("href"), base)):
        account.tid = tid_from_url(href)
    account.name = text_of(author) or page.head("article:author")
    published = (
        parse_time(page.html_attr("data-publishtime"))
        or parse_time(page.head("article:published_time"))
        or parse_time(
            first(time_box.iter("time")).get("datetime")
            if time_box is not None and first(time_box.iter("time")) is not None
            else None
        )
    )
    location = text_of(_find(time_box, "span")) if time_box is not None else ""
    body = extract_body(container, base)
    if _empty_body(body):
        return UnexpectedPage(reason="article body is empty", url=url)
    return _page(
        body,
        docid=docid,
        url=_canonical_url(page, docid, url),
        title=title,
        published_at=published,
        ip_location=location.lstrip("·• ").strip() or None,
        account=account,
        links=links,
        template="mobile",
    )


def parse_legacy(page: Page, url: str | None) -> ArticlePage | UnexpectedPage:
    """Parse the 2019 legacy 网易订阅 template (``dy.163.com/v2/article/detail/…``)."""
    container = _legacy_content(page)
    title = text_of(_legacy_title(page)) or page.head("og:title") or ""
    docid = _checks(page, container, title, url)
    if isinstance(docid, UnexpectedPage) or container is None:
        return docid if isinstance(docid, UnexpectedPage) else UnexpectedPage(reason="no body", url=url)
    base = url or f"https://dy.163.com/v2/article/detail/{docid}.html"
    spans = [text_of(s) for s in _legacy_time_spans(page)]
    spans = [s for s in spans if s and s != "·"]
    column = _legacy_column(page)
    account = AccountInfo()
    if column is not None:
        account.name = text_of(_child(column, "h4")) or None
        account.tagline = text_of(_child(column, "p")) or None
    if account.name is None and len(spans) > 1:
        account.name = spans[1]
    published = parse_time(spans[0]) if spans else None
    body = extract_body(container, base)
    if _empty_body(body):
        return UnexpectedPage(reason="article body is empty", url=url)
    return _page(
        body,
        docid=docid,
        url=_canonical_url(page, docid, url),
        title=title,
        published_at=published,
        ip_location=None,
        account=account,
        links=[],
        template="legacy",
    )


PARSERS = {"desktop": parse_desktop, "mobile": parse_mobile, "legacy": parse_legacy}
