"""Body extraction shared by all article templates: clean the body subtree, split it into paragraphs.

The caller hands over the body container element; everything around it (disclaimer, recommendations,
sidebar, comments, share bar) is never looked at here, so it cannot leak into the paragraphs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

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
_BOUNDARY = _BLOCK | {"br"}
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
_KEEP_ATTRS = frozenset({"src", "href", "alt", "title", "poster", "controls", "colspan", "rowspan"})
_LINK_TAGS = frozenset({"video", "source", "audio", "a"})
_MEDIA_TAGS = frozenset({"video", "audio"})
_MEDIA_SOURCES = frozenset({"source", "track"})
# Values lxml refuses to set: rewriting such an attribute fails, and the page with it (as before).
_UNSETTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
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


def _only_breaks(el: etree._Element) -> bool:
    """Nothing but line breaks (with blank tails) inside (children were pruned before their parents)."""
    for child in el:
        if child.tag != "br":
            return False
        tail = child.tail
        if tail and not tail.isspace():
            return False
    return True


def _drop_statement_block(root: etree._Element, statement: str) -> None:
    for el in reversed(list(root.iterdescendants(*_BLOCK))):
        if norm("".join(el.itertext())) == statement:
            drop(el)
            return


def _clean_attributes(el: etree._Element, base: str | None, names: list[str], classes: str | None) -> bool:
    """Keep only presentation-free attributes; returns True for a video element or wrapper.

    ``names`` and ``classes`` are the element's attribute names and class (``<img>`` is handled by
    the caller).
    """
    tag = el.tag
    video = bool(classes and "video" in classes and _MEDIA_CLASS.search(classes))
    if tag not in _LINK_TAGS:
        if _KEEP_ATTRS.isdisjoint(names):
            el.attrib.clear()
            return video
        kept = [(k, v) for k, v in el.items() if k in _KEEP_ATTRS]
        if len(kept) != len(names):
            el.attrib.clear()
            el.attrib.update(kept)
        elif any(_UNSETTABLE.search(v) for _, v in kept):
            el.attrib.update(kept)  # raises, as rewriting it would
        return video
    kept_map = {k: v for k, v in el.items() if k in _KEEP_ATTRS}
    if tag in ("video", "source", "audio"):
        video = video or tag == "video"
        src = el.get("src") or el.get("data-src")
        if src and (resolved := absolute(src, base)):
            kept_map["src"] = resolved
    elif tag == "a" and "href" in kept_map:
        resolved = absolute(kept_map["href"], base)
        if resolved:
            kept_map["href"] = resolved
        else:
            del kept_map["href"]
    el.attrib.clear()
    el.attrib.update(kept_map)
    return video


def _prune_empty(container: etree._Element) -> None:
    """Drop inline and block wrappers left without text or content, innermost first."""
    for el in reversed(list(container.iterdescendants(*_PRUNABLE))):
        text = el.text
        if (text and not text.isspace()) or (len(el) and not _only_breaks(el)):
            continue
        drop(el)


def _flush(buf: list[str], lines: list[str]) -> None:
    if text := " ".join("".join(buf).split()):
        lines.append(text)
    buf.clear()


def _drop_fallback(media: etree._Element) -> None:
    """Remove what a ``<video>``/``<audio>`` shows only where it cannot play ("您的浏览器暂时无法播放…").

    Done when the walk enters the element, before it descends, so the fallback never reaches a line.
    """
    media.text = None
    for el in list(media):
        if el.tag in _MEDIA_SOURCES:
            # libxml2's HTML parser does not know these are void: what follows can end up inside.
            el.text = el.tail = None
            for inner in list(el):
                el.remove(inner)
        else:
            media.remove(el)


def _is_junk(el: etree._Element, names: list[str], tokens: list[str] | None) -> bool:
    """Not the author's content: junk classes, ad attributes, hidden by inline style."""
    return bool(
        (tokens and not _JUNK_CLASSES.isdisjoint(tokens))
        or (names and ("adtype" in names or "data-adid" in names))
        or (names and "style" in names and _HIDDEN.search(el.get("style") or ""))
    )


class _Walk:
    """State of the single walk over a body: lines, images, video flag, junk to drop afterwards.

    One walk does what used to be four passes over the body (find junk, collect images, clean
    attributes, split lines); junk subtrees are only searched for nested junk and dropped after the
    walk. Lines come out as if the junk had been dropped first: its tail stays in the text flow.
    """

    __slots__ = ("base", "buf", "container", "has_video", "images", "junk", "junk_root", "lines", "posters", "seen")

    def __init__(self, container: etree._Element, base: str | None) -> None:
        self.container = container
        self.base = base
        self.junk: list[etree._Element] = []
        self.junk_root: etree._Element | None = None
        self.posters: list[etree._Element] = []  # open ancestors that are a video's poster image
        self.images: list[str] = []
        self.seen: set[str] = set()
        self.has_video = False
        self.lines: list[str] = []
        self.buf: list[str] = []

    def open_container(self, el: etree._Element) -> None:
        """Start of the container itself: its own text starts the flow."""
        if self.buf and el.tag in _BOUNDARY:
            _flush(self.buf, self.lines)
        if (text := el.text) and el.tag != "br":
            self.buf.append(text)

    def open_junk(self, el: etree._Element) -> None:
        """Start of a junk element: dropped after the walk; the outermost one mutes its subtree."""
        self.junk.append(el)
        if self.junk_root is None:
            self.junk_root = el

    def open_content(
        self, el: etree._Element, tag: str, names: list[str], classes: str | None, tokens: list[str] | None
    ) -> None:
        """Start of a kept element: a line boundary for blocks, its text, its attributes cleaned."""
        buf = self.buf
        if buf and tag in _BOUNDARY:
            _flush(buf, self.lines)
        if tag in _MEDIA_TAGS:
            _drop_fallback(el)
        if (text := el.text) and tag != "br":
            buf.append(text)
        if not names:
            self.has_video = self.has_video or tag == "video"
            return
        if tag == "img":
            self.open_image(el, classes)
        else:
            self.has_video = _clean_attributes(el, self.base, names, classes) or self.has_video
        if tokens and not _POSTER_CLASSES.isdisjoint(tokens):
            self.posters.append(el)

    def open_image(self, el: etree._Element, classes: str | None) -> None:
        """An image: the real URL becomes ``src``; only ``alt`` and ``src`` stay, in that order."""
        src = image_src(el, self.base)
        if src and src not in self.seen and not self.posters:
            self.images.append(src)
            self.seen.add(src)
        alt = el.get("alt")
        el.attrib.clear()
        if alt is not None:
            el.set("alt", alt)
        if src:
            el.set("src", src)
        if classes and "video" in classes and _MEDIA_CLASS.search(classes):
            self.has_video = True

    def close_junk_root(self, el: etree._Element) -> None:
        """End of the outermost junk element: the text after it is content again."""
        self.junk_root = None
        if tail := el.tail:
            self.buf.append(tail)

    def close_content(self, el: etree._Element) -> None:
        """End of a kept element: blocks end a line; the text after it joins the flow."""
        if self.buf and el.tag in _BLOCK:
            _flush(self.buf, self.lines)
        if el is self.container:
            return
        if self.posters and el is self.posters[-1]:
            self.posters.pop()
        if tail := el.tail:
            self.buf.append(tail)


def extract_body(container: etree._Element, base: str | None) -> Body:
    """Clean ``container`` in place and return its paragraphs, cleaned HTML, images and video flag."""
    walk = _Walk(container, base)
    for event, el in etree.iterwalk(container, events=("start", "end")):
        if event == "end":
            if walk.junk_root is None:
                walk.close_content(el)
            elif el is walk.junk_root:
                walk.close_junk_root(el)
            continue
        if el is container:
            walk.open_container(el)
            continue
        tag = el.tag
        if tag in _JUNK_TAGS or tag.__class__ is not str:  # comments and processing instructions too
            walk.open_junk(el)
            continue
        names = el.keys()
        classes = el.get("class") if names else None
        tokens = classes.split() if classes else None
        if names and _is_junk(el, names, tokens):
            walk.open_junk(el)
        elif walk.junk_root is None:
            walk.open_content(el, tag, names, classes, tokens)
    if walk.buf:
        _flush(walk.buf, walk.lines)
    for el in walk.junk:
        drop(el)

    paragraphs = walk.lines
    statement = None
    if paragraphs and _AUTHOR_STATEMENT.match(paragraphs[-1]):
        statement = paragraphs.pop()
        _drop_statement_block(container, statement)

    _prune_empty(container)

    container.tag = "div"
    container.attrib.clear()
    # Built from plain etree elements (see parse_html); lxml.html serialises them all the same.
    body_html = html.tostring(cast(html.HtmlElement, container), encoding="unicode", with_tail=False)
    body_html = _FORMAT_WS.sub("><", body_html).strip()
    return Body(paragraphs, body_html, images=walk.images, has_video=walk.has_video, author_statement=statement)
