"""Shared helpers of the page parsers: decoding, text normalisation, times, counts, image URLs.

All functions are pure: they only look at their arguments.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
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
_PLAIN_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_COUNT = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?)\s*(万|w|W|亿|千|k|K)?\+?$")
_UNITS = {None: 1, "千": 1_000, "k": 1_000, "K": 1_000, "万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000}

# Encodings whose legacy names are subsets of GB18030; decoding as GB18030 loses nothing.
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "x-gbk", "gb_2312-80", "euc-cn", "hz-gb-2312"}

# Single-byte labels that decode any byte sequence: never trusted over bytes that are valid UTF-8 or GB18030.
_ANY_BYTES_CODECS = frozenset({"iso8859-1", "latin-1", "cp1252", "iso8859-15"})

# Lazy-image placeholders that must never be reported as an image of the article.
_PLACEHOLDER = re.compile(
    r"(?:empty\.png|blank\.gif|/default\d*x\d*\.|grey\.gif|placeholder|loading\.gif|spacer\.gif)$",
    re.IGNORECASE,
)
_PLACEHOLDER_ENDINGS = ("empty.png", "blank.gif", "grey.gif", "placeholder", "loading.gif", "spacer.gif")


def _is_placeholder(path: str) -> bool:
    """Same answer as ``_PLACEHOLDER.search(path)``, without running the regex on ordinary URLs."""
    end = (path[:-1] if path.endswith("\n") else path)[-12:]
    if end.isascii() and not end.endswith("."):
        return end.lower().endswith(_PLACEHOLDER_ENDINGS)
    # Non-ASCII case folding ("ſ" matches "s") and the ``/default<W>x<H>.`` form need the regex.
    return _PLACEHOLDER.search(path) is not None


def _codec(name: str) -> str | None:
    name = name.strip().lower()
    if name in _GB_FAMILY:
        return "gb18030"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _candidates(data: bytes, content_type: str | None) -> list[str]:
    """Codecs to try, in order: HTTP charset, ``<meta>`` charset, UTF-8, GB18030.

    A Latin-1 label (``iso-8859-1``, ``windows-1252``) goes last: it decodes any bytes, and NetEase
    serves only UTF-8 or GBK, so such a label on valid UTF-8 or GB18030 bytes is a wrong label.
    """
    candidates: list[str] = []
    header = _CHARSET_IN_HEADER.search(content_type or "")
    header_codec = _codec(header.group(1)) if header else None
    if header_codec:
        candidates.append(header_codec)
    meta = _META_CHARSET.search(data[:4096])
    if meta and (codec := _codec(meta.group(1).decode("ascii", "replace"))):
        # Saved copies keep a stale <meta charset=gb2312> after being re-encoded as UTF-8;
        # valid multi-byte UTF-8 is practically never produced by real GBK text, so it wins.
        candidates.extend(["utf-8", codec] if not header_codec else [codec])
    candidates.extend(["utf-8", "gb18030"])
    latin = [codec for codec in candidates if codec in _ANY_BYTES_CODECS]
    return [codec for codec in candidates if codec not in _ANY_BYTES_CODECS] + latin


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
    for codec in _candidates(data, content_type):
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("utf-8", errors="replace"), "utf-8-replace"


_CHUNK = 16384


def _utf8_blank(data: bytes) -> bool | None:
    """Whether ``data`` holds only whitespace once decoded as UTF-8; None when it is not valid UTF-8.

    Decoded in small chunks: the whole page as one str is a large allocation (page faults cost more
    than the decoding itself) that nothing needs when the bytes are already UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    blank = True
    try:
        for start in range(0, len(data), _CHUNK):
            chunk = decoder.decode(view[start : start + _CHUNK])
            if blank and chunk and not chunk.isspace():
                blank = False
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        return None
    return blank


_SCRIPT_OPEN = re.compile(rb"<(script|style)\b", re.IGNORECASE)
_SCRIPT_CLOSE = {
    b"script": re.compile(rb"</script\s*>", re.IGNORECASE),
    b"style": re.compile(rb"</style\s*>", re.IGNORECASE),
}
_CONTROL_BYTES = bytes(range(32)).translate(None, b"\t\n\r")
_CONTROL_SINGLES = [bytes([byte]) for byte in _CONTROL_BYTES]
# Terminal escape sequences: CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \\, bounded), two-character ones.
_ESCAPE = r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)|[ -/]*[0-~])?"
_ESCAPE_BYTES = re.compile(_ESCAPE.encode("ascii"))
# In text: the escapes, the 8-bit CSI and every C0/C1 control but tab, newline and carriage return.
_CONTROL_TEXT = re.compile(
    _ESCAPE + r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x1b\x9c]{0,512}(?:\x07|\x9c)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _drop_control_bytes(data: bytes) -> bytes:
    # Pages almost never contain any: 29 memchr scans cost a quarter of one translate pass.
    if any(byte in data for byte in _CONTROL_SINGLES):
        if b"\x1b" in data:
            data = _ESCAPE_BYTES.sub(b"", data)  # the whole sequence: "ESC[2J" leaves no "[2J"
        return data.translate(None, _CONTROL_BYTES)
    return data


def strip_controls(text: str) -> str:
    """``text`` without control characters (tab, newline and CR kept) and terminal escape sequences."""
    return _CONTROL_TEXT.sub("", text) if _ANY_CONTROL.search(text) else text


def has_controls(text: str) -> bool:
    """True when :func:`strip_controls` would change ``text``."""
    # Every sequence starts with a control character: one character class is ten times faster.
    return _ANY_CONTROL.search(text) is not None


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


def prepare(body: bytes | str, content_type: str | None) -> tuple[str | bytes, bytes, bool]:
    """Decode ``body`` as :func:`decode_body` does.

    Returns the whole document (the text, or the body itself when it is valid UTF-8: either serves
    for ASCII marker tests, see :func:`has_marker`), the UTF-8 bytes ready for :func:`parse_html`
    and whether the document is blank (empty or whitespace only).
    """
    whole: str | bytes | None = None
    blank = False
    if isinstance(body, bytes | bytearray) and not body.startswith(codecs.BOM_UTF8):
        data = bytes(body)
        for codec in _candidates(data, content_type):
            if codec == "utf-8":
                utf8_blank = _utf8_blank(data)
                if utf8_blank is None:
                    continue
                whole, blank = data, utf8_blank
                break
            try:
                text = data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                continue
            whole, blank = text, text.isspace() or not text
            break
    if whole is None:
        text, _codec_name = decode_body(body, content_type)
        whole, blank = text, text.isspace() or not text
    if isinstance(whole, bytes):
        prepared = whole
    else:
        prepared = _XML_DECL.sub("", whole, count=1).encode("utf-8", errors="replace")
    return whole, _drop_control_bytes(_strip_scripts(prepared)), blank


def has_marker(whole: str | bytes, marker: str) -> bool:
    """True when the ASCII ``marker`` occurs in a document as returned by :func:`prepare`."""
    if isinstance(whole, bytes):
        return marker.encode("ascii") in whole
    return marker in whole


def parse_html(data: bytes) -> etree._Element | None:
    """Parse UTF-8 bytes into an lxml document; None when there is nothing to parse."""
    if not data or data.isspace():
        return None
    # Plain etree elements: lxml.html's per-element Python class lookup costs a third of the run time.
    parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    return root if root is not None and isinstance(root.tag, str) else None


def iter_document(doc: etree._Element, *tags: str) -> Iterator[etree._Element]:
    """Elements of the whole document (what an XPath ``//`` sees), optionally only of some tags.

    The HTML parser puts stray content after ``</html>`` next to the root element, not inside it.
    """
    before = list(doc.itersiblings(preceding=True))
    for top in reversed(before):
        yield from top.iter(*tags)
    yield from doc.iter(*tags)
    for top in doc.itersiblings():
        yield from top.iter(*tags)


def norm(text: str | None) -> str:
    """Collapse all whitespace (including full-width spaces and NBSP) to single spaces and strip."""
    if not text:
        return ""
    return " ".join(text.split())


def text_of(el: etree._Element | None) -> str:
    """Normalised visible text of an element (empty string for None)."""
    if el is None:
        return ""
    if not len(el):  # no children: skip the text iterator, which costs more than the text itself
        text = el.text
        return " ".join(text.split()) if text else ""
    return " ".join("".join(el.itertext()).split())


def first(*results: Iterable[Any]) -> Any:
    """The first node of the first non-empty XPath result, or None.

    Elements are never truth-tested: an element without children is falsy in lxml.
    """
    for nodes in results:
        for node in nodes:
            return node
    return None


def has_token(value: str | None, token: str) -> bool:
    """True when the class list ``value`` holds ``token``, split exactly as :func:`cls` splits it
    (XPath ``normalize-space``: only space, tab, CR and LF separate tokens)."""
    if not value or token not in value:
        return False
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    return token in value.split(" ")


def cls(name: str) -> str:
    """XPath predicate: the element has CSS class ``name``."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def parse_time(text: str | None) -> datetime | None:
    """Parse "YYYY-MM-DD[ HH:MM[:SS]]" (or an ISO string with offset) as Beijing time."""
    if not text:
        return None
    text = text.strip()
    if len(text) == 19 and text.isascii() and _PLAIN_TIME.fullmatch(text):
        # The usual "YYYY-MM-DD HH:MM:SS": the regex below would read exactly these fields.
        try:
            return datetime(
                int(text[:4]),
                int(text[5:7]),
                int(text[8:10]),
                int(text[11:13]),
                int(text[14:16]),
                int(text[17:19]),
                tzinfo=BEIJING,
            )
        except ValueError:
            return None
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
    query = url.find("?")
    fragment = url.find("#")
    if query < 0:
        return url if fragment < 0 else url[:fragment]
    if 0 <= fragment < query:
        return url[:fragment]
    for pair in url[query + 1 : fragment if fragment >= 0 else len(url)].split("&"):
        if pair.split("=", 1)[0] not in TRACKING_PARAMS:
            return strip_tracking(url)
    # Same result as strip_tracking (only tracking parameters or a fragment), without re-encoding.
    return url[:query]


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
    if _is_placeholder(url.split("?", 1)[0].split("#", 1)[0]):
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
