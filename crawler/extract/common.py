"""Shared helpers of the page parsers: decoding, text normalisation, times, counts, image URLs.

All functions are pure: they only look at their arguments.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

from lxml import etree

from crawler.ids import TRACKING_PARAMS, strip_tracking

BEIJING = timezone(timedelta(hours=8))
"""Pages show Beijing time; a fixed offset (China has no DST) avoids needing tz data."""

_CHARSET_IN_HEADER = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.IGNORECASE)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_DATETIME = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_COUNT = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?)\s*(万|w|W|亿|千|k|K)?\+?$")
_UNITS = {None: 1, "千": 1_000, "k": 1_000, "K": 1_000, "万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000}

# Encodings whose legacy names are subsets of GB18030; decoding as GB18030 loses nothing.
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "x-gbk", "gb_2312-80", "euc-cn", "hz-gb-2312"}

# Lazy-image placeholders that must never be reported as an image of the article.
_PLACEHOLDER = re.compile(
    r"(?:empty\.png|blank\.gif|/default\d*x\d*\.|grey\.gif|placeholder|loading\.gif|spacer\.gif)$",
    re.IGNORECASE,
)


def _codec(name: str) -> str | None:
    name = name.strip().lower()
    if name in _GB_FAMILY:
        return "gb18030"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_body(body: bytes | str, content_type: str | None) -> tuple[str, str]:
    """Decode a response body to text; returns ``(text, codec)``.

    Order: the charset of the HTTP ``Content-Type``; a ``<meta>`` charset in the first bytes; UTF-8;
    GB18030; UTF-8 with replacement characters. Each candidate must decode strictly to be chosen.
    """
    if isinstance(body, str):
        return body, "str"
    data = bytes(body)
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    candidates: list[str] = []
    header = _CHARSET_IN_HEADER.search(content_type or "")
    if header and (codec := _codec(header.group(1))):
        candidates.append(codec)
    meta = _META_CHARSET.search(data[:4096])
    if meta and (codec := _codec(meta.group(1).decode("ascii", "replace"))):
        # Saved copies keep a stale <meta charset=gb2312> after being re-encoded as UTF-8;
        # valid multi-byte UTF-8 is practically never produced by real GBK text, so it wins.
        candidates.extend(["utf-8", codec] if not header else [codec])
    candidates.extend(["utf-8", "gb18030"])
    for codec in candidates:
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("utf-8", errors="replace"), "utf-8-replace"


_SCRIPT_OPEN = re.compile(rb"<(script|style)\b", re.IGNORECASE)
_SCRIPT_CLOSE = {
    b"script": re.compile(rb"</script\s*>", re.IGNORECASE),
    b"style": re.compile(rb"</style\s*>", re.IGNORECASE),
}
_CONTROL_BYTES = bytes(range(32)).translate(None, b"\t\n\r")


def _strip_scripts(data: bytes) -> bytes:
    """Cut <script>/<style> elements out before parsing: they are never content and are a third of
    a page's bytes, so the parser gets much less to do."""
    parts: list[bytes] = []
    pos = 0
    while (opening := _SCRIPT_OPEN.search(data, pos)) is not None:
        closing = _SCRIPT_CLOSE[opening.group(1).lower()].search(data, opening.end())
        if closing is None:
            break
        parts.append(data[pos : opening.start()])
        pos = closing.end()
    parts.append(data[pos:])
    return b"".join(parts)


def prepare(body: bytes | str, content_type: str | None) -> tuple[str, bytes]:
    """Decode ``body``; returns the text and UTF-8 bytes ready for :func:`parse_html`."""
    text, codec = decode_body(body, content_type)
    if codec == "utf-8" and isinstance(body, bytes | bytearray):
        data = bytes(body)
    else:
        data = _XML_DECL.sub("", text, count=1).encode("utf-8", errors="replace")
    return text, _strip_scripts(data).translate(None, _CONTROL_BYTES)


def parse_html(data: bytes) -> etree._Element | None:
    """Parse UTF-8 bytes into an lxml document; None when there is nothing to parse."""
    if not data.strip():
        return None
    # Plain etree elements: lxml.html's per-element Python class lookup costs a third of the run time.
    parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    return root if root is not None and isinstance(root.tag, str) else None


def norm(text: str | None) -> str:
    """Collapse all whitespace (including full-width spaces and NBSP) to single spaces and strip."""
    if not text:
        return ""
    return " ".join(text.split())


def text_of(el: etree._Element | None) -> str:
    """Normalised visible text of an element (empty string for None)."""
    if el is None:
        return ""
    return norm("".join(el.itertext()))


def first(*results: Iterable[Any]) -> Any:
    """The first node of the first non-empty XPath result, or None.

    Elements are never truth-tested: an element without children is falsy in lxml.
    """
    for nodes in results:
        for node in nodes:
            return node
    return None


def cls(name: str) -> str:
    """XPath predicate: the element has CSS class ``name``."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def parse_time(text: str | None) -> datetime | None:
    """Parse "YYYY-MM-DD[ HH:MM[:SS]]" (or an ISO string with offset) as Beijing time."""
    if not text:
        return None
    text = text.strip()
    if "T" in text and ("+" in text[10:] or text.endswith("Z")):
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value.astimezone(BEIJING)
        except ValueError:
            pass
    match = _DATETIME.search(text)
    if not match:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=BEIJING,
        )
    except ValueError:
        return None


def parse_count(text: str | None) -> int | None:
    """Parse displayed counts such as "875", "1,234", "1.2万", "3亿", "10w+"; None when unreadable."""
    value = norm(text)
    match = _COUNT.match(value)
    if not match:
        return None
    number, unit = match.groups()
    try:
        return round(float(number.replace(",", "")) * _UNITS[unit])
    except (ValueError, OverflowError):
        return None


def absolute(href: str | None, base: str | None) -> str | None:
    """Resolve ``href`` against the page URL (default www.163.com); None for non-web links."""
    if not href:
        return None
    href = href.strip()
    if href.startswith(("https://", "http://")):
        return href if len(href) > 8 else None
    if href.startswith("//"):
        return "https:" + href if len(href) > 2 else None
    if not href or href.startswith(("javascript:", "#", "mailto:", "data:", "about:")):
        return None
    try:
        url = urljoin(base or "https://www.163.com/", href)
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


def clean_link(href: str | None, base: str | None) -> str | None:
    """Absolute link URL with tracking parameters and fragment removed."""
    url = absolute(href, base)
    if not url:
        return None
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return url
    if url[cut] == "#" or all(
        pair.split("=", 1)[0] in TRACKING_PARAMS for pair in url[cut + 1 :].split("#", 1)[0].split("&")
    ):
        # Same result as strip_tracking (only tracking parameters or a fragment), without re-encoding.
        return url[:cut]
    return strip_tracking(url)


def original_image(url: str | None, base: str | None = None) -> str | None:
    """The original URL of an image: unwraps ``nimg.ws.126.net/?url=<encoded>&…``; drops placeholders."""
    url = absolute(url, base)
    if not url:
        return None
    if "nimg.ws.126.net" in url:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.hostname and parts.hostname.endswith("nimg.ws.126.net"):
            inner = dict(parse_qsl(parts.query)).get("url")
            if inner:
                inner = unquote(inner) if "%3A" in inner[:12].upper() else inner
                url = absolute(inner, None) or url
    if _PLACEHOLDER.search(url.split("?", 1)[0].split("#", 1)[0]):
        return None
    return url


def image_src(img: etree._Element, base: str | None = None) -> str | None:
    """The real source of an <img>: lazy attributes first, then ``src``."""
    for attr in ("data-src", "data-original", "_src", "data-lazy-src", "src"):
        value = img.get(attr)
        if value and not value.startswith("data:"):
            found = original_image(value, base)
            if found:
                return found
    return None


def drop(el: etree._Element) -> None:
    """Remove an element but keep the text that follows it (its tail)."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail:
        previous = el.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)
