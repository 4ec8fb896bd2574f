"""Body extraction shared by all article templates: clean the body subtree, split it into paragraphs.

The caller hands over the body container element; everything around it (disclaimer, recommendations,
sidebar, comments, share bar) is never looked at here, so it cannot leak into the paragraphs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree, html

from crawler.extract.common import absolute, drop, image_src, norm

_BLOCK = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "blockquote",
        "figure",
        "figcaption",
        "pre",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "td",
        "th",
        "center",
        "hr",
        "address",
        "main",
        "nav",
    ]
)
_JUNK_TAGS = frozenset(
    [
        "script",
        "style",
        "noscript",
        "iframe",
        "frame",
        "object",
        "embed",
        "form",
        "input",
        "button",
        "textarea",
        "select",
        "option",
        "template",
        "link",
        "meta",
        "canvas",
        "svg",
    ]
)
# Class tokens of things that sit inside or next to body markup but are not the author's content:
# ads, the platform disclaimer, share bars, app-promotion overlays of the mobile template.
_JUNK_CLASSES = frozenset(
    [
        "post_statement",
        "statement",
        "at_item",
        "ad_module",
        "gg300",
        "post_recommend_ad",
        "post_top",
        "post_share",
        "post_top_share",
        "js_qrcode_wrap",
        "js-open-app",
        "s-tip",
        "ad_hover_href",
        "post_recommends",
        "post_side",
        "post_wemedia",
        "tie-areas",
        "post_comment",
        "post_next",
        "share_box",
    ]
)
_MEDIA_CLASS = re.compile(r"\b(?:m-video|video)\b")
_HIDDEN = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|(?=.*height\s*:\s*0(?:px)?\s*(?:;|$))(?=.*overflow\s*:\s*hidden)",
    re.IGNORECASE,
)
_POSTER_CLASSES = frozenset({"s-cover", "js-article-videoCover"})
_PRUNABLE = ("p", "div", "span", "section", "b", "strong", "em", "i", "font", "center")
_MEDIA_TAGS = ("img", "video", "audio", "source", "table", "hr")
_KEEP_ATTRS = frozenset({"src", "href", "alt", "title", "poster", "controls", "colspan", "rowspan"})
_AUTHOR_STATEMENT = re.compile(r"^[【\[(（]?\s*声明\s*[】\])）]?\s*[:：]")
_FORMAT_WS = re.compile(r">\s*\n\s*<")


@dataclass(slots=True)
class Body:
    """The extracted body of an article."""

    paragraphs: list[str] = field(default_factory=list)
    html: str = ""
    images: list[str] = field(default_factory=list)
    has_video: bool = False
    author_statement: str | None = None


def _is_junk(el: etree._Element) -> bool:
    tag = el.tag
    if not isinstance(tag, str):
        return True
    if tag in _JUNK_TAGS:
        return True
    classes = (el.get("class") or "").split()
    if any(c in _JUNK_CLASSES for c in classes):
        return True
    if el.get("adtype") is not None or el.get("data-adid") is not None:
        return True
    style = el.get("style")
    return bool(style and _HIDDEN.search(style))


def _lines(root: etree._Element) -> list[str]:
    lines: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            text = norm("".join(buf))
            if text:
                lines.append(text)
            buf.clear()

    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in _BLOCK or tag == "br":
                flush()
            if el.text and tag != "br":
                buf.append(el.text)
        else:
            if tag in _BLOCK:
                flush()
            if el is not root and el.tail:
                buf.append(el.tail)
    flush()
    return lines


def _in_poster(img: etree._Element, container: etree._Element) -> bool:
    parent = img.getparent()
    while parent is not None and parent is not container:
        if _POSTER_CLASSES.intersection((parent.get("class") or "").split()):
            return True
        parent = parent.getparent()
    return False


def _is_empty(el: etree._Element) -> bool:
    """No text and nothing but line breaks inside (children were pruned before their parents)."""
    if el.text and not el.text.isspace():
        return False
    return all(child.tag == "br" and (not child.tail or child.tail.isspace()) for child in el)


def _drop_statement_block(root: etree._Element, statement: str) -> None:
    for el in reversed(list(root.iterdescendants(*_BLOCK))):
        if norm("".join(el.itertext())) == statement:
            drop(el)
            return


def _clean_attributes(el: etree._Element, base: str | None) -> bool:
    """Keep only presentation-free attributes; returns True for a video element or wrapper."""
    tag = el.tag
    classes = el.get("class")
    video = bool(classes and "video" in classes and _MEDIA_CLASS.search(classes))
    kept = {k: v for k, v in el.attrib.items() if k in _KEEP_ATTRS}
    if tag in ("video", "source", "audio"):
        video = video or tag == "video"
        src = el.get("src") or el.get("data-src")
        if src and (resolved := absolute(src, base)):
            kept["src"] = resolved
    elif tag == "a" and "href" in kept:
        resolved = absolute(kept["href"], base)
        if resolved:
            kept["href"] = resolved
        else:
            del kept["href"]
    elif tag == "img":
        # ``src`` was already replaced by the real image URL (or removed) in extract_body.
        kept = {k: kept[k] for k in ("alt", "src") if k in kept}
    if len(kept) != len(el.attrib) or kept.items() != el.attrib.items():
        el.attrib.clear()
        el.attrib.update(kept)
    return video


def extract_body(container: etree._Element, base: str | None) -> Body:
    """Clean ``container`` in place and return its paragraphs, cleaned HTML, images and video flag."""
    junk = [el for el in container.iterdescendants() if _is_junk(el)]
    for el in junk:
        drop(el)

    images: list[str] = []
    for img in container.iter("img"):
        src = image_src(img, base)
        if src:
            img.set("src", src)
            if src not in images and not _in_poster(img, container):
                images.append(src)
        elif "src" in img.attrib:
            del img.attrib["src"]
    has_video = False
    for el in container.iterdescendants():
        has_video = _clean_attributes(el, base) or has_video

    paragraphs = _lines(container)
    statement = None
    if paragraphs and _AUTHOR_STATEMENT.match(paragraphs[-1]):
        statement = paragraphs.pop()
        _drop_statement_block(container, statement)

    for el in reversed(list(container.iterdescendants(*_PRUNABLE))):
        if _is_empty(el):
            drop(el)

    container.tag = "div"
    container.attrib.clear()
    body_html = html.tostring(container, encoding="unicode", with_tail=False)
    body_html = _FORMAT_WS.sub("><", body_html).strip()
    return Body(paragraphs, body_html, images, has_video, statement)
