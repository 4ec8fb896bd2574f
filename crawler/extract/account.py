"""Account pages (``www.163.com/dy/media/<T-id>.html``): the first screen of an account's items.

No saved copy of a real account page exists; the selectors follow the structure documented in
PAGES.md (*inferred*), with a tolerant fallback to any article/video link inside the list container.
"""

from __future__ import annotations

import re

from lxml import etree

from crawler.extract.common import clean_link, cls, first, image_src, norm, parse_time, text_of
from crawler.extract.types import AccountPage, ListedItem, UnexpectedPage
from crawler.ids import TID_RE, canonical_article_url, docid_from_url, tid_from_url, video_id_from_url

X = etree.XPath

LIST_BOX = X(f"//ul[{cls('list_box')}]")
LIST_FALLBACK = X(f"//*[{cls('js-list-tab-box')} or {cls('tab_content')}]")
HEAD_IMG = X(f"//img[{cls('head_img')}]")
INTRO = X(f"//div[{cls('icon_line')} and {cls('desc')}]")
IP_LINE = X(f"//div[{cls('icon_line')} and {cls('iplocation')}]")
CANONICAL = X("//link[@rel='canonical']/@href")
DATA_TID = X("//*[@data-tid]/@data-tid")
LIST_ITEMS = X(f"./li | .//li[{cls('item')} or {cls('js-item')}]")
ITEM_LINKS = X(".//a[contains(@href, '/article/') or contains(@href, '/v/video/')]")
ITEM_TITLE_A = X(f".//div[{cls('desc')}]//a[{cls('title')}][@href]")
ITEM_H4_A = X(".//h4//a[@href]")
ITEM_ANY_A = X(".//a[@href]")
ITEM_THUMB = X(f".//a[{cls('img')}]//img")
ITEM_IMG = X(".//img")
ITEM_TIME = X(f".//*[{cls('time')}]")
ANY_H2 = X(".//h2")
TITLE = X("//title")

_LABEL = re.compile(r"^(?:简介|IP属地|IP 属地|ip属地)\s*[:：]\s*")
_LIST_MARK = re.compile(rb"class=[\"'][^\"']*\blist_box\b")
_DOCUMENT_END = re.compile(rb"</(?:html|body)\s*>", re.IGNORECASE)


def looks_like_account(doc: etree._Element) -> bool:
    """True when the document carries the markers of an account page."""
    return bool(LIST_BOX(doc) or HEAD_IMG(doc) or LIST_FALLBACK(doc))


def is_truncated(data: bytes) -> bool:
    """True when the document (bytes, scripts cut out) ends inside or before the item list."""
    start = _LIST_MARK.search(data)
    if not start:
        return not _DOCUMENT_END.search(data)
    return not re.search(rb"</ul\s*>", data[start.end() :], re.IGNORECASE)


def _item_url(href: str | None, base: str | None) -> tuple[str, str, str] | None:
    url = clean_link(href, base)
    if not url:
        return None
    if docid := docid_from_url(url):
        return "article", docid, canonical_article_url(docid)
    if video := video_id_from_url(url):
        return "video", video, f"https://www.163.com/v/video/{video}.html"
    return None


def _item(node: etree._Element, base: str | None) -> ListedItem | None:
    anchors = ITEM_TITLE_A(node) + ITEM_H4_A(node) + ITEM_ANY_A(node)
    if node.tag == "a":
        anchors.insert(0, node)
    for anchor in anchors:
        found = _item_url(anchor.get("href"), base)
        if found is None:
            continue
        item_type, item_id, url = found
        title = text_of(anchor) or norm(anchor.get("title"))
        if not title:
            for other in anchors:
                if _item_url(other.get("href"), base) == found:
                    title = text_of(other) or norm(other.get("title"))
                    if title:
                        break
        img = first(ITEM_THUMB(node), ITEM_IMG(node))
        if not title and img is not None:
            title = norm(img.get("alt"))
        when = parse_time(text_of(first(ITEM_TIME(node))))
        return ListedItem(
            item_type=item_type,  # type: ignore[arg-type]
            id=item_id,
            url=url,
            title=title or None,
            published_at=when,
            thumbnail=image_src(img, base) if img is not None else None,
        )
    return None


def _name(doc: etree._Element) -> str | None:
    head = first(HEAD_IMG(doc))
    node = head.getparent() if head is not None else None
    for _ in range(4):
        if node is None:
            break
        heading = first(ANY_H2(node))
        if heading is not None and text_of(heading):
            return text_of(heading)
        node = node.getparent()
    title = text_of(first(TITLE(doc)))
    title = re.split(r"\s*[-_|]\s*网易", title)[0].strip()
    return title or None


def parse_account(doc: etree._Element, url: str | None) -> AccountPage | UnexpectedPage:
    """Parse an account page into its listed articles and videos (an empty list is valid)."""
    container = first(LIST_BOX(doc))
    items_nodes: list[etree._Element] = []
    if container is not None:
        items_nodes = LIST_ITEMS(container)
    else:
        container = first(LIST_FALLBACK(doc))
    if container is None:
        return UnexpectedPage(reason="account page without an item list", url=url)
    base = url or "https://www.163.com/"
    items: list[ListedItem] = []
    seen: set[str] = set()
    for node in items_nodes:
        item = _item(node, base)
        if item is not None and item.id not in seen:
            seen.add(item.id)
            items.append(item)
    if not items:
        # Markup drift: the list classes changed but article links are still inside the container.
        for anchor in ITEM_LINKS(container):
            node = anchor
            while node.getparent() is not None and node.getparent() is not container:
                node = node.getparent()
            item = _item(node if node.getparent() is container else anchor, base)
            if item is not None and item.id not in seen:
                seen.add(item.id)
                items.append(item)
    tid = tid_from_url(url) if url else None
    if tid is None:
        for href in CANONICAL(doc):
            if tid := tid_from_url(href):
                break
    if tid is None:
        tid = next((t for t in DATA_TID(doc) if TID_RE.match(t)), None)
    intro = _LABEL.sub("", text_of(first(INTRO(doc)))) or None
    location = _LABEL.sub("", text_of(first(IP_LINE(doc)))) or None
    return AccountPage(
        tid=tid,
        name=_name(doc),
        items=items,
        url=f"https://www.163.com/dy/media/{tid}.html" if tid else url,
        intro=intro,
        ip_location=location,
    )
