"""Is this answer a block? A pure classifier over status, headers and body (no network, no clock).

A *block* is the site refusing to serve haowatch (status 403/418/429/451, a captcha or
"访问过于频繁" page, an empty 200, a JavaScript challenge). It differs from ``parse_failed``
(the site answered with a page haowatch did not understand): a block says "slow down, try later";
a parse failure says "the markup changed".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

BLOCK_STATUSES = {403: "HTTP 403 (forbidden)", 418: "HTTP 418 (bot refused)", 429: "HTTP 429 (too many requests)",
                  451: "HTTP 451 (unavailable for legal reasons)"}

# Real account and article pages are tens to hundreds of KB; block and challenge pages are small.
# Words are only trusted in small documents, so an article *about* captchas is never a block.
_SMALL_PAGE = 48 * 1024

_BLOCK_WORDS = re.compile(
    r"访问过于频繁|访问太频繁|请求过于频繁|操作过于频繁|访问频率过高|访问频率过快|请求太频繁|访问受限|拒绝访问|"
    r"安全验证|人机验证|滑动验证|滑块验证|请输入验证码|验证码|captcha|geetest|access denied|too many requests|"
    r"request blocked|rate limit",
    re.IGNORECASE,
)
_CHALLENGE = re.compile(
    r"acw_sc__v2|__jsl_clearance|_waf_|jschallenge|challenge-platform|cf-chl|cf_chl|"
    r"document\.cookie\s*=.{0,200}(?:location|reload)|"
    r"(?:window\.)?location(?:\.href)?\s*=.{0,200}document\.cookie|"
    r"enable javascript|请开启JavaScript|请启用JavaScript",
    re.IGNORECASE | re.DOTALL,
)
_TAGS = re.compile(rb"<script\b.*?</script\s*>|<style\b.*?</style\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(rb"\s+")


@dataclass(frozen=True, slots=True)
class Block:
    """Why an answer counts as a block: ``kind`` is status | captcha | empty | challenge."""

    kind: str
    reason: str


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    if not headers:
        return ""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _text(body: bytes) -> str:
    visible = _SPACE.sub(b" ", _TAGS.sub(b" ", body)).strip()
    for encoding in ("utf-8", "gb18030"):
        try:
            return visible.decode(encoding)
        except UnicodeDecodeError:
            continue
    return visible.decode("utf-8", "replace")


def classify_block(status: int, headers: Mapping[str, str] | None, body: bytes, *,
                   expect_json: bool = False) -> Block | None:
    """Return a :class:`Block` when the answer is the site refusing service, else None.

    ``status`` is the HTTP status, ``headers`` the response headers (any case), ``body`` the raw
    bytes, ``expect_json`` True for the JSON list channels (whose normal answers have no HTML).
    404 is never a block (the not-found page is its own result); 5xx are errors, not blocks.
    """
    if status in BLOCK_STATUSES:
        return Block("status", BLOCK_STATUSES[status])
    if status != 200:
        return None
    stripped = body.strip()
    if not stripped:
        return Block("empty", "empty 200 answer")
    if len(stripped) > _SMALL_PAGE:
        return None
    content_type = _header(headers, "content-type").lower()
    if expect_json and stripped[:1] in (b"{", b"[") and "html" not in content_type:
        return None  # JSON: the list parsers decide
    head = stripped[:_SMALL_PAGE]
    text = _text(head)
    words = _BLOCK_WORDS.search(text)
    if words:
        return Block("captcha", f"anti-crawl page ({words.group(0)})")
    raw = head.decode("utf-8", "replace")
    challenge = _CHALLENGE.search(raw)
    if challenge and len(text) < 2000:
        return Block("challenge", f"JavaScript challenge ({challenge.group(0)[:40]})")
    if len(text) < 20 and b"<script" in head.lower():
        return Block("challenge", "JavaScript-only page with no content")
    if not text and not expect_json:
        return Block("empty", "200 answer without any visible content")
    return None
