"""Discovery channels: which ways of listing an account's items to ask, and what their answers mean.

Three channels list an account's newest items:

- ``account``: the account page ``/dy/media/<T-id>.html`` (primary: one request, ~10 items);
- ``listapi``: ``/v2/article/list.do?wemediaId=<W-id>`` (needs the W-id, pages of 10);
- ``applist``: ``/nc/subscribe/list/<T-id>/all/<offset>-<size>.html`` (the news app's list).

The policy here is pure (no Scrapy, no database): :func:`interpret` turns one HTTP answer into a
:class:`ChannelAnswer`; :class:`SourceCheck` collects the answers of one check, says which channels
to ask next (fallbacks when the primary fails, every channel on a cross-check) and finally
:meth:`SourceCheck.decide` names the source's status (``ok``, ``degraded``, ``blocked``, ...), the
items to use and the items some channel missed (``drift``). The spider only routes through
:class:`crawler.channel_router.ChannelRouter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

from crawler.extract.applist import parse_app_list
from crawler.extract.blocks import classify_block
from crawler.extract.listapi import parse_list_api
from crawler.extract.types import AccountPage, ArticlePage, ListedItem, NotFoundPage, PageResult, UnexpectedPage

ACCOUNT, LISTAPI, APPLIST = "account", "listapi", "applist"
PRIMARY = ACCOUNT
FALLBACKS = (LISTAPI, APPLIST)
CHANNELS = (ACCOUNT, LISTAPI, APPLIST)
CHANNEL_NAMES = {ACCOUNT: "account page", LISTAPI: "list API", APPLIST: "app list"}


@dataclass(slots=True)
class ChannelAnswer:
    """One channel's answer: ``status`` is ok | empty | blocked | parse_failed | http_error |
    not_found | unavailable (the channel cannot be asked, e.g. no W-id yet)."""

    channel: str
    status: str
    items: list[ListedItem] = field(default_factory=list)
    error: str | None = None
    http_status: int | None = None
    name: str | None = None
    url: str | None = None

    @property
    def works(self) -> bool:
        """True when the channel listed items."""
        return self.status == "ok"


def parse_channel_body(channel: str, body: bytes, tid: str) -> PageResult:
    """Parse a JSON channel's body (``listapi`` or ``applist``)."""
    if channel == LISTAPI:
        return parse_list_api(body, tid)
    if channel == APPLIST:
        return parse_app_list(body, tid)
    raise ValueError(f"{channel!r} is not a JSON channel")


def interpret(channel: str, status: int, headers: Mapping[str, str], body: bytes, result: PageResult | None,
              url: str | None = None) -> ChannelAnswer:
    """What one answer of ``channel`` means. ``result`` is the parsed page (None when not parsed)."""
    block = classify_block(status, headers, body, expect_json=channel != ACCOUNT)
    if block is not None:
        return ChannelAnswer(channel, "blocked", error=f"blocked: {block.reason}", http_status=status, url=url)
    if status == 404:
        return ChannelAnswer(channel, "not_found", error="HTTP 404", http_status=status, url=url)
    if status != 200:
        return ChannelAnswer(channel, "http_error", error=f"HTTP {status}", http_status=status, url=url)
    # Every kind of page is handled: an article where an account page was asked for is not understood.
    match result:
        case AccountPage():
            return ChannelAnswer(channel, "ok" if result.items else "empty", list(result.items),
                                 None if result.items else f"{CHANNEL_NAMES[channel]} listed no items",
                                 status, result.name, url)
        case NotFoundPage():
            return ChannelAnswer(channel, "not_found", error=result.reason, http_status=status, url=url)
        case UnexpectedPage() if result.reason.startswith("blocked"):
            return ChannelAnswer(channel, "blocked", error=result.reason, http_status=status, url=url)
        case UnexpectedPage():
            reason = result.reason
        case ArticlePage():
            reason = f"answered with a {result.kind}"
        case None:
            reason = "answered with a ?"
        case _:
            assert_never(result)
    return ChannelAnswer(channel, "parse_failed", error=f"{CHANNEL_NAMES[channel]} not understood: {reason}",
                         http_status=status, url=url)


def failed_answer(channel: str, error: str, url: str | None = None, http_status: int | None = None) -> ChannelAnswer:
    """The answer of a channel whose request failed (network error, retries exhausted)."""
    return ChannelAnswer(channel, "http_error", error=error, http_status=http_status, url=url)


def _missed_by(answer: ChannelAnswer, union: dict[str, ListedItem]) -> list[str]:
    """Items other channels listed inside the time window ``answer`` covers but ``answer`` lacks."""
    own = {item.id for item in answer.items}
    times = [item.published_at for item in answer.items if item.published_at is not None]
    if not times:
        return []
    oldest = min(times)
    return [item_id for item_id, item in union.items()
            if item_id not in own and item.published_at is not None and item.published_at >= oldest]


@dataclass(slots=True)
class Decision:
    """The outcome of one check of one source."""

    status: str  # ok | degraded | blocked | empty | parse_failed | not_found | http_error
    error: str | None
    active_channel: str | None
    items: list[ListedItem]
    name: str | None
    drift: dict[str, list[str]]  # channel -> item ids it missed (cross-checks only)
    cross_checked: bool

    @property
    def ok(self) -> bool:
        """A check that found the source's list through some channel."""
        return self.status in ("ok", "degraded")


@dataclass(slots=True)
class SourceCheck:
    """The answers of one check of one source, gathered across channel requests."""

    tid: str
    wemedia_id: str | None
    cross_check: bool = False
    last_status: str | None = None
    has_history: bool = False
    started_at: datetime | None = None
    answers: dict[str, ChannelAnswer] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)

    def available(self, channel: str) -> bool:
        """Whether ``channel`` can be asked for this source."""
        return channel != LISTAPI or bool(self.wemedia_id)

    def next_channels(self) -> list[str]:
        """Channels to ask after the primary answered (empty: decide now)."""
        primary = self.answers.get(PRIMARY)
        if primary is None:
            return [PRIMARY]
        if primary.works and not self.cross_check:
            return []
        if primary.status in ("empty", "not_found") and not self.has_history and not self.cross_check:
            # Never listed anything: not *suddenly* empty or gone (a site-wide URL change would be), so
            # there is nothing to fall back for.
            return []
        wanted = [c for c in FALLBACKS if c not in self.answers]
        for channel in wanted:
            if not self.available(channel):
                self.answers[channel] = ChannelAnswer(channel, "unavailable", error="no W-id known yet")
        return [c for c in wanted if self.available(c)]

    def record(self, answer: ChannelAnswer) -> None:
        """Add one channel's answer."""
        self.answers[answer.channel] = answer
        self.pending.discard(answer.channel)

    def decide(self) -> Decision:
        """Status, items and drift of this check from the answers gathered."""
        primary = self.answers.get(PRIMARY) or ChannelAnswer(PRIMARY, "http_error", error="not asked")
        working = [a for a in (self.answers.get(c) for c in CHANNELS) if a is not None and a.works]
        union: dict[str, ListedItem] = {}
        for answer in working:
            for item in answer.items:
                union.setdefault(item.id, item)
        name = next((a.name for a in working if a.name), None) or next(
            (a.name for a in self.answers.values() if a.name), None)
        drift: dict[str, list[str]] = {}
        if self.cross_check and len(working) > 1:
            for answer in working:
                missed = _missed_by(answer, union)
                if missed:
                    drift[answer.channel] = missed
        if primary.works:
            items = list(union.values()) if self.cross_check else list(primary.items)
            return Decision("ok", None, PRIMARY, items, primary.name or name, drift, self.cross_check)
        if working:
            used = working[0].channel
            why = f"{CHANNEL_NAMES[PRIMARY]} {primary.status}: {primary.error or '-'}; using {CHANNEL_NAMES[used]}"
            return Decision("degraded", why, used, list(union.values()), name, drift, self.cross_check)
        asked = [a for a in self.answers.values() if a.status != "unavailable"]
        error: str | None
        if any(a.status == "blocked" for a in asked) and all(a.status in ("blocked", "empty", "http_error")
                                                            for a in asked):
            status = "blocked"
            error = "; ".join(f"{CHANNEL_NAMES[a.channel]}: {a.error or a.status}" for a in asked)
        else:
            status = primary.status if primary.status != "ok" else "empty"
            error = primary.error
        return Decision(status, error, None, [], name, drift, self.cross_check)


def parse_as(page_type: str, body: bytes, url: str | None, content_type: str | None,
             tid: str | None) -> PageResult:
    """Parse a saved response the way the crawl parsed it: list channels by their JSON parser,
    everything else (account, article, other) by ``parse_page``."""
    if page_type in (LISTAPI, APPLIST):
        return parse_channel_body(page_type, body, tid or "")
    from crawler.extract import parse_page

    return parse_page(body, url, content_type)
