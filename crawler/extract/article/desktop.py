"""The desktop template "post2020_dy": 网易号 articles and editorial ``/<channel>/article/`` pages."""

from __future__ import annotations

import re

from lxml import etree

from crawler.extract.article.document import SIDE_ITEMS, Page, ancestor_with_id, find, first_link, has_class
from crawler.extract.article.skeleton import ArticleTemplate, Facts, Located, make_link
from crawler.extract.article.truncation import BodyMarks
from crawler.extract.common import clean_link, first, norm, parse_count, parse_time, text_of
from crawler.extract.types import AccountInfo, Link
from crawler.ids import WEMEDIA_RE, tid_from_url

_SOURCE_TIME = re.compile(r"^(.*?)\s*(\d{4}-\d{1,2}-\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?)\s*$")


def ip_location(info: etree._Element | None) -> str | None:
    """The bare text after the IP-location icon of an info line (2024+)."""
    if info is None:
        return None
    for img in info.iter("img"):
        if "iplocation" in (img.get("src") or "").lower():
            return norm(img.tail) or None
    return None


def related(page: Page, base: str | None) -> list[Link]:
    """相关推荐: ``li.post_recommend`` items."""
    links: list[Link] = []
    for li in page.by_class("post_recommend", "li"):
        anchor = first_link(li, "h3")
        url = clean_link(anchor.get("href"), base) if anchor is not None else None
        if not url or anchor is None:
            continue
        title = text_of(anchor) or norm(anchor.get("title"))
        line = text_of(find(li, None, "post_recommend_time"))
        match = _SOURCE_TIME.match(line)
        source, when = (norm(match.group(1)), parse_time(match.group(2))) if match else (line, None)
        links.append(make_link("related", len(links) + 1, url, title, source=source, published_at=when))
    return links


def trending(page: Page, base: str | None) -> list[Link]:
    """热点推荐: ``div.post_recommend_new`` items, without the ad slots reusing the class."""
    links: list[Link] = []
    for item in page.by_class("post_recommend_new"):
        if has_class(item, "post_recommend_ad") or has_class(item, "at_item"):
            continue
        parent = item.getparent()
        if parent is not None and has_class(parent, "post_recommends_list"):
            continue  # ad slots interleaved in the related list reuse this class
        anchor = first_link(item, "h3")
        url = clean_link(anchor.get("href"), base) if anchor is not None else None
        if not url or anchor is None:
            continue
        title = text_of(anchor) or norm(anchor.get("title"))
        source = text_of(find(item, None, "post_recommend_source"))
        when = parse_time(text_of(find(item, None, "post_recommend_time")))
        links.append(make_link("trending", len(links) + 1, url, title, source=source, published_at=when))
    return links


def _module_title(node: etree._Element | None) -> str | None:
    while node is not None:
        if has_class(node, "post_side_mod"):
            for child in node:
                if child.tag == "h2" and has_class(child, "post_side_mod_title"):
                    return text_of(child) or None
        if has_class(node, "post_side_mod_panel"):
            # Tabbed module without its own heading: the tab with the same index names the panel.
            parent = node.getparent()
            panels = [p for p in parent if has_class(p, "post_side_mod_panel")] if parent is not None else []
            tab_mod = node.getparent()
            while tab_mod is not None and not has_class(tab_mod, "js-tab-mod"):
                tab_mod = tab_mod.getparent()
            tabs = [t for t in tab_mod.iter() if has_class(t, "post_side_mod_tab")] if tab_mod is not None else []
            index = panels.index(node) if node in panels else len(tabs)
            if index < len(tabs):
                return text_of(tabs[index]) or None
        if has_class(node, "post_side"):
            return None
        node = node.getparent()
    return None


def side(page: Page, base: str | None) -> list[Link]:
    """Sidebar modules (头条要闻, 体育要闻, …), each link once per module."""
    links: list[Link] = []
    seen: dict[str | None, set[str]] = {}
    titles: dict[etree._Element | None, str | None] = {}
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
            links.append(make_link("side", len(urls), url, title, module=module))
    return links


def _account(page: Page, contain: etree._Element | None, base: str | None) -> AccountInfo:
    account = AccountInfo()
    wemedia = norm(contain.get("data-wemediaid")) if contain is not None else ""
    account.wemedia_id = wemedia if WEMEDIA_RE.match(wemedia) else None
    card = first(page.by_class("post_wemedia"))
    info = first(page.by_class("post_info"))
    hrefs: list[str] = []
    if card is not None:
        name_holder = find(card, None, "post_wemedia_name")
        name_anchor = find(name_holder, "a") if name_holder is not None else None
        account.name = text_of(name_anchor if name_anchor is not None else name_holder) or None
        account.tagline = text_of(find(card, None, "post_wemedia_title")) or None
        for token, attr in (("post_wemedia_info1", "article_count"), ("post_wemedia_info2", "follower_count")):
            holder = find(card, None, token)
            setattr(account, attr, parse_count(text_of(find(holder, "em"))) if holder is not None else None)
        hrefs.extend(a.get("href") for a in card.iter("a") if a.get("href"))
    source_anchor = None
    if info is not None:
        anchors = [a for a in info.iter("a") if a.get("href") and not has_class(a, "post_jubao")]
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


class DesktopTemplate(ArticleTemplate):
    """``#contain`` > ``h1.post_title``, ``div.post_info``, ``div.post_body``; recommendations and sidebar."""

    name = "desktop"
    marks = BodyMarks.for_class(
        "post_body", (b"post_statement", b"post_comment_area", b"post_author", b"post_recommends", b"post_next")
    )

    def detect(self, page: Page) -> bool:
        return page.has("post_title") and bool(page.by_class("post_title", "h1"))

    def locate(self, page: Page) -> Located:
        container = first(page.by_class("post_body", "div"))
        heading = first(page.by_class("post_title", "h1"))
        title = text_of(heading) or page.head("og:title") or ""
        return Located(container, title, heading, ancestor_with_id("contain", container, heading))

    def links(self, page: Page, located: Located, base: str) -> list[Link]:
        return related(page, base) + trending(page, base) + side(page, base)

    def facts(self, page: Page, located: Located, base: str) -> Facts:
        contain = located.contain
        info = first(page.by_class("post_info"))
        published = (
            parse_time(contain.get("data-ptime") if contain is not None else None)
            or parse_time(page.head("article:published_time"))
            or parse_time(page.html_attr("data-publishtime"))
            or parse_time(text_of(info))
        )
        return Facts(published, ip_location(info), _account(page, contain, base))


class DesktopBodyOnlyTemplate(DesktopTemplate):
    """A desktop page whose headline lost its class: recognised by ``div.post_body`` alone.

    Tried after the editorial templates, whose pages carry a ``div.post_body`` around their toolbar too.
    """

    def detect(self, page: Page) -> bool:
        return page.has("post_body") and bool(page.by_class("post_body", "div"))
