"""Identifiers and URL forms of NetEase Hao: parse, validate and canonicalise (pure functions).

Every request haowatch makes is rebuilt from an id and the configured site base, so links found in
pages are reduced to ids here first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# [0-9], never \d: in Python \d also matches fullwidth and Arabic-Indic digits.
TID_RE = re.compile(r"^T[0-9]{13}$")
WEMEDIA_RE = re.compile(r"^W[0-9]{18,19}$")
DOCID_RE = re.compile(r"^[0-9A-V]{8}[0-9A-Z]{8}$")
VIDEO_RE = re.compile(r"^V[0-9A-Z]{8}$")

_DOCID_IN_PATH = re.compile(
    r"/(?:[a-z0-9]+/)?(?:article|a)/(?:detail/)?([0-9A-V]{8}[0-9A-Z]{8})(?:_pdya11y)?\.html$"
)
# Editorial pages before 2021: ``<channel>.163.com/<yy>/<mmdd>/<hh>/<DOCID>.html``.
_EDITORIAL_PATH = re.compile(r"^/\d{2}/\d{4}/\d{2}/([0-9A-V]{8}[0-9A-Z]{8})\.html$")
_VIDEO_IN_PATH = re.compile(r"/v/video/(V[0-9A-Z]{8})\.html$")
_TID_IN_PATH = re.compile(r"^/(?:dy/media|news/sub)/(T[0-9]{13})\.html$")

NETEASE_HOSTS = frozenset(
    {"163.com", "www.163.com", "m.163.com", "3g.163.com", "c.m.163.com", "dy.163.com", "news.163.com"}
)
TRACKING_PARAMS = frozenset({"f", "clickfrom", "spss", "from", "referFrom", "spssid", "spsw", "spsf"})


class InvalidSourceId(ValueError):
    """Raised when text is not a T-id or a NetEase Hao account URL."""


def _is_netease_host(host: str) -> bool:
    return host in NETEASE_HOSTS or host.endswith(".163.com")


def _shown(text: str, limit: int = 80) -> str:
    """``repr`` of user input, cut so that a huge argument is not echoed whole."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} characters)"


def parse_tid(text: str) -> str:
    """Return the T-id named by ``text``: a bare T-id, a desktop or a mobile account URL.

    Raises :class:`InvalidSourceId` with a human-readable reason for anything else.
    """
    value = text.strip()
    if TID_RE.match(value):
        return value
    shown = _shown(value)
    if value.startswith("T") and value[1:].isdigit():
        raise InvalidSourceId(f"{shown} is not a T-id: expected T followed by 13 digits (0-9)")
    if "://" not in value:
        raise InvalidSourceId(f"{shown} is neither a T-id (T + 13 digits) nor an account URL")
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
    except ValueError as exc:  # e.g. "Invalid IPv6 URL": still the documented error type
        raise InvalidSourceId(f"{shown} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not _is_netease_host(host):
        raise InvalidSourceId(f"{shown} is not a NetEase Hao account URL")
    match = _TID_IN_PATH.match(parts.path)
    if not match:
        raise InvalidSourceId(
            f"{shown} is not an account page: expected /dy/media/T….html or /news/sub/T….html"
        )
    return match.group(1)


def docid_from_url(url: str) -> str | None:
    """Return the article docid in any known URL form (desktop, mobile, 3g, c.m, a11y, legacy, editorial), else None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    match = _DOCID_IN_PATH.search(parts.path) or _EDITORIAL_PATH.match(parts.path)
    return match.group(1) if match else None


def video_id_from_url(url: str) -> str | None:
    """Return the video id of a ``/v/video/V….html`` URL, else None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    match = _VIDEO_IN_PATH.search(parts.path)
    return match.group(1) if match else None


def tid_from_url(url: str) -> str | None:
    """Return the T-id of an account URL, else None (never raises)."""
    try:
        return parse_tid(url)
    except (InvalidSourceId, ValueError):
        return None


def strip_tracking(url: str) -> str:
    """Drop tracking query parameters and fragments (``?f=post2020_dy_recommends``, ``#offset=0``…)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in TRACKING_PARAMS]
    scheme = parts.scheme or "https"
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))


def canonical_article_url(docid: str) -> str:
    """The canonical public URL of a 网易号 article."""
    return f"https://www.163.com/dy/article/{docid}.html"


def article_url(site_url: str, docid: str) -> str:
    """The URL to fetch an article from, on the configured site base."""
    return f"{site_url.rstrip('/')}/dy/article/{docid}.html"


def account_url(site_url: str, tid: str) -> str:
    """The URL to fetch an account page from, on the configured site base."""
    return f"{site_url.rstrip('/')}/dy/media/{tid}.html"


def list_api_url(site_url: str, wemedia_id: str, page: int, size: int = 10) -> str:
    """The JSON list endpoint for an account's older history (by W-id), on the configured site base."""
    return f"{site_url.rstrip('/')}/v2/article/list.do?pageNo={page}&wemediaId={wemedia_id}&size={size}"
