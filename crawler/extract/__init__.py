"""Pure page extraction for NetEase Hao pages: bytes in, typed result out (no network, DB or clock).

Public API: :func:`parse_page`, :func:`to_dict`, :func:`content_hash` and the result types.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from datetime import datetime
from typing import Any

from lxml import etree

from crawler.extract import account as _account
from crawler.extract import article as _article
from crawler.extract.common import (
    BEIJING,
    cls,
    has_controls,
    has_marker,
    norm,
    parse_html,
    prepare,
    strip_controls,
    text_of,
)
from crawler.extract.types import (
    AccountInfo,
    AccountPage,
    ArticlePage,
    Link,
    ListedItem,
    NotFoundPage,
    PageResult,
    UnexpectedPage,
)
from crawler.ids import tid_from_url

__all__ = [
    "AccountInfo",
    "AccountPage",
    "ArticlePage",
    "Link",
    "ListedItem",
    "NotFoundPage",
    "PageResult",
    "UnexpectedPage",
    "content_hash",
    "parse_page",
    "to_dict",
]

_BLOCK_WORDS = re.compile(
    r"访问过于频繁|访问太频繁|请求过于频繁|操作过于频繁|访问频率过高|访问受限|拒绝访问|安全验证|人机验证|"
    r"滑动验证|请输入验证码|验证码|captcha|access denied|too many requests|403 forbidden|rate limit",
    re.IGNORECASE,
)
_NOT_FOUND = etree.XPath(f"//*[{cls('wrap_2018_404')}]")
_GONE_WORDS = re.compile(r"已被删除|已删除|不存在|已下线|无法查看|页面找不到|页面没有找到")


def _classify(body: bytes | str, url: str | None, content_type: str | None) -> PageResult:
    if not isinstance(body, bytes | bytearray | memoryview | str):
        return UnexpectedPage(reason=f"unsupported body type {type(body).__name__}", url=url)
    whole, data, blank = prepare(bytes(body) if not isinstance(body, str) else body, content_type)
    if blank:
        return UnexpectedPage(reason="empty page", url=url)
    doc = parse_html(data)
    if doc is None:
        return UnexpectedPage(reason="empty page: no HTML content", url=url)
    if has_marker(whole, "wrap_2018_404") and _NOT_FOUND(doc):
        return NotFoundPage(reason="404 page (wrap_2018_404)", url=url)

    page = _article.Page(doc, whole)
    template = _article.detect_template(page)
    if template is not None:
        if _article.is_truncated(data, template.marks):
            inside = not _article.body_complete(data, template.marks)
            where = "inside the article body" if inside else "after the article body"
            return UnexpectedPage(reason=f"truncated: document ends {where}", url=url)
        result = template.parse(page, url)
        if isinstance(result, UnexpectedPage) and _GONE_WORDS.search(text_of(doc.find("body"))[:2000]):
            return NotFoundPage(reason=f"article gone ({result.reason})", url=url)
        return result

    page_text = text_of(doc.find("body")) or text_of(doc)
    if _account.looks_like_account(doc):
        if _account.is_truncated(data):
            return UnexpectedPage(reason="truncated: document ends inside the account item list", url=url)
        return _account.parse_account(doc, url)
    if _BLOCK_WORDS.search(page_text[:5000]) or _BLOCK_WORDS.search(text_of(doc.find("head"))):
        word = _BLOCK_WORDS.search(page_text[:5000]) or _BLOCK_WORDS.search(text_of(doc.find("head")))
        return UnexpectedPage(reason=f"blocked: anti-crawl page ({word.group(0) if word else '?'})", url=url)
    if url and tid_from_url(url):
        if not _article.document_complete(data):
            return UnexpectedPage(reason="truncated: account page ends before the item list", url=url)
        return UnexpectedPage(reason="account page without an item list", url=url)
    if not _article.document_complete(data):
        return UnexpectedPage(reason="truncated or unrecognised page: no article body found", url=url)
    return UnexpectedPage(reason="not an article or account page", url=url)


def parse_page(body: bytes | str, url: str | None = None, content_type: str | None = None) -> PageResult:
    """Decode, classify and parse one fetched page.

    ``body`` is the raw response (bytes, decoded with the charset of ``content_type``, then a
    ``<meta>`` charset, then UTF-8, then GB18030) or already-decoded text; ``url`` is the URL the page
    was fetched from (used for ids and to resolve relative links). Returns an :class:`ArticlePage`,
    :class:`AccountPage`, :class:`NotFoundPage` or :class:`UnexpectedPage`; never raises.
    """
    try:
        return _without_controls(_classify(body, url, content_type))
    except Exception as exc:  # the crawler must get a result for every input, whatever its shape
        return UnexpectedPage(reason=strip_controls(f"parser error: {type(exc).__name__}: {exc}"[:300]), url=url)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _strings(obj: Any, found: list[str]) -> None:
    """Collect every str reachable from a result (fields, lists, nested records)."""
    if isinstance(obj, str):
        found.append(obj)
    elif isinstance(obj, list):
        for item in obj:
            _strings(item, found)
    elif dataclasses.is_dataclass(obj):
        names = _FIELDS.get(type(obj))
        if names is None:
            names = _FIELDS[type(obj)] = tuple(f.name for f in dataclasses.fields(obj))
        for name in names:
            _strings(getattr(obj, name), found)


_MARKUP_FIELDS = frozenset({"body_html", "body_text"})


def _cleaned(obj: Any) -> Any:
    """``obj`` with controls stripped from every str in it, whitespace collapsed again where there were
    any (records changed in place; markup keeps its whitespace)."""
    if isinstance(obj, str):
        return norm(strip_controls(obj)) if has_controls(obj) else obj
    if isinstance(obj, list):
        return [_cleaned(item) for item in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for name in _FIELDS.get(type(obj)) or tuple(f.name for f in dataclasses.fields(obj)):
            value = getattr(obj, name)
            if name in _MARKUP_FIELDS and isinstance(value, str):
                setattr(obj, name, strip_controls(value))
            else:
                setattr(obj, name, _cleaned(value))
    return obj


def _all_text(result: PageResult) -> str:
    """Every str of a result joined (an article's fields read directly: it has hundreds)."""
    if isinstance(result, ArticlePage):
        account = result.account
        parts = [result.docid, result.url, result.title, result.ip_location or "", result.body_html]
        parts += [result.author_statement or "", account.tid or "", account.name or "", account.tagline or ""]
        parts += [account.wemedia_id or "", *result.images, *result.body_paragraphs]
        links = result.links
        parts += [link.url for link in links]
        parts += [link.title for link in links if link.title]
        parts += [link.source for link in links if link.source]
        parts += [link.module for link in links if link.module]
        return "\n".join(parts)
    strings: list[str] = []
    _strings(result, strings)
    return "\n".join(strings)


def _without_controls(result: PageResult) -> PageResult:
    """Control characters and terminal escapes never leave extraction, in any text field.

    Raw control bytes are already cut before parsing; this catches what character references
    (``&#27;``), C1 characters and JSON escapes bring in. One search over all text settles the
    usual case where there is none.
    """
    if has_controls(_all_text(result)):
        _cleaned(result)
        if isinstance(result, ArticlePage):
            result.body_paragraphs = [p for p in result.body_paragraphs if p]
            result.body_text = "\n".join(result.body_paragraphs)
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=BEIJING)
        return aware.astimezone(BEIJING).isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def to_dict(result: PageResult) -> dict[str, Any]:
    """A JSON-ready dict of a result: dataclass field names as keys (``kind`` included), datetimes as
    ISO 8601 strings at +08:00, the account nested under ``account`` and links as a list of dicts."""
    data = _jsonable(result)
    if not isinstance(data, dict):
        raise TypeError(f"not a page result: {type(result).__name__}")
    return data


class _HashDrops(dict[int, str | None]):
    """``str.translate`` table deleting whitespace, punctuation and control/format characters.

    Filled lazily (one Unicode lookup per distinct character ever seen) so translating runs in C.
    """

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        kept = None if unicodedata.category(char)[0] in "PZC" or char.isspace() else char
        self[code] = kept
        return kept


_HASH_DROPS = _HashDrops()


def _hash_text(text: str) -> str:
    # Whitespace, punctuation and invisible format characters differ between re-posts of one text.
    return unicodedata.normalize("NFKC", text).casefold().translate(_HASH_DROPS)


def content_hash(paragraphs: list[str]) -> str:
    """SHA-256 hex digest of the body text, normalised so that re-posts of the same text hash equal.

    Normalisation: NFKC, case-folded, all whitespace, punctuation and control/format characters
    removed (paragraph boundaries therefore do not matter either).
    """
    normalised = "".join(_hash_text(p) for p in paragraphs)
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()
