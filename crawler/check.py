"""``haowatch check``: a live diagnosis of one account across every discovery channel.

Fetches the account page, the app list, the newest listed article and (with the W-id from that
article, or given) the list API, one request each, politely and in order; reports per channel the
HTTP status, time, items found, block detection, the overlap between channels and what would be
stored. Uses the standard library's HTTP client (with the first of ``HAOWATCH_PROXIES``), not a
crawl: it needs no database and changes nothing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.channel_router import APP_PAGE_SIZE, LIST_PAGE_SIZE, app_list_url
from crawler.channels import ACCOUNT, APPLIST, CHANNEL_NAMES, CHANNELS, LISTAPI, PRIMARY, interpret, parse_as
from crawler.extract import ArticlePage, to_dict
from crawler.extract.blocks import classify_block
from crawler.ids import account_url, article_url, list_api_url
from crawler.settings import REFERER

MAX_BODY = 8 * 1024 * 1024
EXIT_PRIMARY, EXIT_FALLBACK_ONLY, EXIT_NONE = 0, 1, 2


@dataclass
class Fetched:
    """One raw HTTP exchange."""

    url: str
    status: int | None
    seconds: float
    headers: dict[str, str]
    body: bytes
    error: str | None = None

    @property
    def content_type(self) -> str | None:
        """The Content-Type header, when sent."""
        return next((v for k, v in self.headers.items() if k.lower() == "content-type"), None)


@dataclass
class ChannelReport:
    """What one channel answered."""

    channel: str
    url: str | None
    http_status: int | None
    seconds: float | None
    status: str
    items: list[str] = field(default_factory=list)
    blocked: str | None = None
    error: str | None = None


@dataclass
class CheckReport:
    """The whole diagnosis."""

    tid: str
    wemedia_id: str | None
    channels: list[ChannelReport]
    overlap: dict[str, int]
    article: dict[str, Any] | None
    verdict: str  # primary | fallback | none

    @property
    def exit_code(self) -> int:
        """0: the primary channel works; 1: only a fallback does; 2: none does."""
        return {"primary": EXIT_PRIMARY, "fallback": EXIT_FALLBACK_ONLY}.get(self.verdict, EXIT_NONE)


class Fetcher:
    """Plain GETs with haowatch's identity, optionally through a proxy; keeps every exchange."""

    def __init__(self, user_agent: str, timeout: float, proxy: str | None = None) -> None:
        handlers: list[urllib.request.BaseHandler] = []
        handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}))
        self.opener = urllib.request.build_opener(*handlers)
        self.headers = {"User-Agent": user_agent, "Referer": REFERER,
                        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                        "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6"}
        self.timeout = timeout
        self.log: list[tuple[str, str, Fetched]] = []  # (page type, case name, exchange)

    def get(self, url: str, page_type: str, case: str) -> Fetched:
        """Fetch ``url``; never raises for network or HTTP errors."""
        started = time.monotonic()
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                fetched = Fetched(url, answer.status, 0.0, dict(answer.headers.items()), answer.read(MAX_BODY))
        except urllib.error.HTTPError as exc:
            body = exc.read(MAX_BODY) if exc.fp is not None else b""
            fetched = Fetched(url, exc.code, 0.0, dict(exc.headers.items()) if exc.headers else {}, body)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            fetched = Fetched(url, None, 0.0, {}, b"", f"{type(exc).__name__}: {reason}"[:300])
        fetched.seconds = time.monotonic() - started
        self.log.append((page_type, case, fetched))
        return fetched


def _channel(channel: str, fetched: Fetched, tid: str) -> tuple[ChannelReport, list[Any]]:
    if fetched.status is None:
        return ChannelReport(channel, fetched.url, None, fetched.seconds, "http_error", error=fetched.error), []
    result = None
    if fetched.status == 200:
        result = parse_as(channel, fetched.body, fetched.url, fetched.content_type, tid)
    answer = interpret(channel, fetched.status, fetched.headers, fetched.body, result, fetched.url)
    block = classify_block(fetched.status, fetched.headers, fetched.body, expect_json=channel != ACCOUNT)
    report = ChannelReport(channel, fetched.url, fetched.status, fetched.seconds, answer.status,
                           [i.id for i in answer.items], block.reason if block else None, answer.error)
    return report, answer.items


def run_check(tid: str, *, site_url: str, list_api_base: str, app_api_base: str, user_agent: str,
              timeout: float, proxy: str | None = None, wemedia_id: str | None = None,
              pause: float = 1.0) -> tuple[CheckReport, Fetcher]:
    """Diagnose ``tid`` live; ``pause`` seconds between requests (the site is asked politely)."""
    fetcher = Fetcher(user_agent, timeout, proxy)
    reports: dict[str, ChannelReport] = {}
    items: dict[str, list[Any]] = {}

    reports[ACCOUNT], items[ACCOUNT] = _channel(ACCOUNT, fetcher.get(account_url(site_url, tid), "account",
                                                                     f"{tid}_account"), tid)
    time.sleep(pause)
    reports[APPLIST], items[APPLIST] = _channel(
        APPLIST, fetcher.get(app_list_url(app_api_base, tid, 0, APP_PAGE_SIZE), "applist", f"{tid}_applist"), tid)

    article: dict[str, Any] | None = None
    newest = next((i for c in (ACCOUNT, APPLIST) for i in items[c] if i.item_type == "article"), None)
    if newest is not None:
        time.sleep(pause)
        fetched = fetcher.get(article_url(site_url, newest.id), "article", f"{tid}_newest_{newest.id}")
        result = parse_as("article", fetched.body, fetched.url, fetched.content_type, tid) \
            if fetched.status == 200 else None
        block = classify_block(fetched.status, fetched.headers, fetched.body) if fetched.status else None
        article = {"docid": newest.id, "url": fetched.url, "http_status": fetched.status,
                   "seconds": round(fetched.seconds, 3), "blocked": block.reason if block else None,
                   "kind": getattr(result, "kind", None) if result else None}
        if isinstance(result, ArticlePage):
            wemedia_id = wemedia_id or result.account.wemedia_id
            article.update(title=result.title, published_at=result.published_at.isoformat()
                           if result.published_at else None, account=result.account.name,
                           paragraphs=len(result.body_paragraphs), images=len(result.images),
                           links=len(result.links), template=result.template)
        elif result is not None:
            article["reason"] = getattr(result, "reason", None)
        elif fetched.error:
            article["error"] = fetched.error

    if wemedia_id:
        time.sleep(pause)
        reports[LISTAPI], items[LISTAPI] = _channel(
            LISTAPI, fetcher.get(list_api_url(list_api_base, wemedia_id, 1, LIST_PAGE_SIZE), "listapi",
                                 f"{tid}_listapi"), tid)
    else:
        reports[LISTAPI] = ChannelReport(LISTAPI, None, None, None, "unavailable",
                                         error="no W-id: no article could be read (pass --wemedia-id)")
        items[LISTAPI] = []

    working = [c for c in CHANNELS if reports[c].status == "ok"]
    overlap: dict[str, int] = {}
    for i, first in enumerate(working):
        for second in working[i + 1:]:
            overlap[f"{first}+{second}"] = len(set(reports[first].items) & set(reports[second].items))
    verdict = "primary" if PRIMARY in working else "fallback" if working else "none"
    ordered = [reports[c] for c in CHANNELS]
    return CheckReport(tid, wemedia_id, ordered, overlap, article, verdict), fetcher


def format_report(report: CheckReport) -> str:
    """The human-readable diagnosis."""
    lines = [f"check {report.tid}" + (f" (W-id {report.wemedia_id})" if report.wemedia_id else "")]
    for r in report.channels:
        timing = f"{r.seconds * 1000:.0f} ms" if r.seconds is not None else "-"
        http = str(r.http_status) if r.http_status is not None else "-"
        flag = " (primary)" if r.channel == PRIMARY else ""
        lines.append(f"  {CHANNEL_NAMES[r.channel] + flag:<22} {r.status:<12} HTTP {http:<4} {timing:>8}"
                     f"  {len(r.items):>3} items" + (f"  BLOCKED: {r.blocked}" if r.blocked else "")
                     + (f"  ({r.error})" if r.error and not r.blocked and r.status != "ok" else ""))
        if r.url:
            lines.append(f"      {r.url}")
    if report.overlap:
        lines.append("  overlap: " + ", ".join(
            f"{' & '.join(CHANNEL_NAMES[c] for c in pair.split('+'))} share {n}" for pair, n in report.overlap.items()))
    a = report.article
    if a is None:
        lines.append("  newest article: none listed by any channel")
    elif a.get("kind") == "article":
        lines.append(f"  newest article {a['docid']}: HTTP {a['http_status']} {a['seconds'] * 1000:.0f} ms,"
                     f" template {a['template']}")
        lines.append(f"      would store: 「{a['title']}」 by {a['account'] or '?'} at {a['published_at'] or '?'},"
                     f" {a['paragraphs']} paragraphs, {a['images']} images, {a['links']} links")
    else:
        why = a.get("blocked") or a.get("reason") or a.get("error") or f"HTTP {a.get('http_status')}"
        lines.append(f"  newest article {a['docid']}: NOT readable: {why}")
    total = len({i for r in report.channels for i in r.items})
    lines.append(f"  listed items (all channels): {total}")
    lines.append({"primary": "verdict: OK: the account page works (exit 0)",
                  "fallback": "verdict: DEGRADED: only a fallback channel works (exit 1)",
                  "none": "verdict: FAILING: no channel lists this account (exit 2)"}[report.verdict])
    return "\n".join(lines)


def report_dict(report: CheckReport) -> dict[str, Any]:
    """The diagnosis as JSON-ready data (``--json``)."""
    return {
        "tid": report.tid, "wemedia_id": report.wemedia_id, "verdict": report.verdict,
        "exit_code": report.exit_code,
        "channels": [{"channel": r.channel, "url": r.url, "http_status": r.http_status,
                      "seconds": round(r.seconds, 3) if r.seconds is not None else None, "status": r.status,
                      "items": len(r.items), "item_ids": r.items, "blocked": r.blocked, "error": r.error}
                     for r in report.channels],
        "overlap": report.overlap, "newest_article": report.article,
    }


def save_fixtures(fetcher: Fetcher, directory: Path, tid: str) -> list[Path]:
    """Write every raw response as a fixture case ``DIR/<type>/<case>/{page.html,meta.json,expected.json}``."""
    written: list[Path] = []
    saved_at = datetime.now(UTC).isoformat(timespec="seconds")
    for page_type, case, fetched in fetcher.log:
        folder = directory / page_type / case
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "page.html").write_bytes(fetched.body)
        meta = {"url": fetched.url, "content_type": fetched.content_type, "status": fetched.status,
                "headers": fetched.headers, "tid": tid, "page_type": page_type, "saved_at": saved_at,
                "source": "haowatch check --save"}
        (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        expected = to_dict(parse_as(page_type, fetched.body, fetched.url, fetched.content_type, tid))
        (folder / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n",
                                              encoding="utf-8")
        written.append(folder)
    return written
