"""The document index shared by every article template, and small element lookups.

The lookups stand for the XPath expressions in their docstrings: libxml2 evaluates such predicates
far more slowly than a walk over one tag with a C-level filter. Same results, same order.
"""

from __future__ import annotations

from lxml import etree

from crawler.extract.common import has_marker, has_token, iter_document, norm

# Only the element kinds the parsers look up: every extra match costs a Python proxy object.
POST_TAGS = ("div", "li", "h1")
HEAD_TAGS = ("meta", "link")
SIDE_ITEMS = " side items"  # index key (never a class token): lead items and list items of sidebar modules


class Page:
    """A parsed document with the lookups every parser needs, each computed at most once."""

    __slots__ = ("_found", "_head", "_index", "_markers", "doc", "text")

    def __init__(self, doc: etree._Element, text: str | bytes) -> None:
        self.doc = doc
        self.text = text
        self._head: dict[str, str] | None = None
        self._index: dict[str, list[etree._Element]] | None = None
        self._found: dict[str, etree._Element | None] = {}
        self._markers: dict[str, bool] = {}

    def has(self, *markers: str) -> bool:
        """True when any of the ASCII ``markers`` occurs in the raw document (each search done once)."""
        for marker in markers:
            found = self._markers.get(marker)
            if found is None:
                found = self._markers[marker] = has_marker(self.text, marker)
            if found:
                return True
        return False

    def first_with_class(self, tag: str, token: str) -> etree._Element | None:
        """The first ``tag`` element with class ``token`` (``//tag[cls(token)]``), memoised."""
        key = f"{tag}.{token}"
        if key not in self._found:
            self._found[key] = next(
                (el for el in iter_document(self.doc, tag) if has_token(el.get("class"), token)), None
            )
        return self._found[key]

    def first_with_id(self, tag: str, ident: str) -> etree._Element | None:
        """The first ``tag`` element with ``id`` ``ident`` (``//tag[@id=ident]``), memoised."""
        key = f"{tag}#{ident}"
        if key not in self._found:
            self._found[key] = next((el for el in iter_document(self.doc, tag) if el.get("id") == ident), None)
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
                    content = el.get("content")
                    if name and name not in head and content:
                        head[name] = norm(content)
                else:
                    rel, href = el.get("rel"), el.get("href")
                    if rel and href:
                        head.setdefault(f"link:{rel}", href.strip())
            self._head = head
        return self._head.get(key) or None

    def html_attr(self, name: str) -> str | None:
        """An attribute of the root ``<html>`` element."""
        return norm(self.doc.get(name)) or None


def has_class(el: etree._Element, token: str) -> bool:
    """True when ``el`` has class ``token``."""
    classes = el.get("class")
    # The substring test settles almost every call without splitting.
    return classes is not None and token in classes and token in classes.split()


def find(root: etree._Element, tag: str | None = None, token: str | None = None) -> etree._Element | None:
    """First descendant of ``root`` (itself included) with the tag and/or class token."""
    for el in root.iter(tag) if tag else root.iter():
        if token is None:
            return el
        classes = el.get("class")
        if classes and token in classes and token in classes.split():
            return el
    return None


def first_link(root: etree._Element, within: str | None = None) -> etree._Element | None:
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


def child(el: etree._Element, tag: str) -> etree._Element | None:
    """``./tag``, first match."""
    return next(el.iterchildren(tag), None)


def in_section(el: etree._Element, token: str) -> bool:
    """True when ``el`` is inside a ``section`` with class ``token``."""
    parent = el.getparent()
    while parent is not None:
        if parent.tag == "section" and has_token(parent.get("class"), token):
            return True
        parent = parent.getparent()
    return False


def ancestor_with_id(ident: str, *starts: etree._Element | None) -> etree._Element | None:
    """The nearest element (a start itself included) with ``id`` ``ident``, climbing from each start."""
    for node in starts:
        while node is not None:
            if node.get("id") == ident:
                return node
            node = node.getparent()
    return None
