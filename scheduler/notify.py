"""Deliver events to subscriptions through Apprise URLs: at least once, with retries and a dead letter.

Events and their deliveries are written by database triggers in the transaction of each change.
The :class:`Dispatcher` thread claims due deliveries (``FOR UPDATE SKIP LOCKED``, with a lease), sends
them, and records delivered / retry later (exponential backoff) / dead after the last attempt. It
wakes on ``NOTIFY haowatch_events`` (sent at commit) and otherwise when the next retry is due.
Every message carries the event id (in the text, and for JSON webhooks as ``event_id`` and the
``X-Haowatch-Event-Id`` header) so receivers can drop the rare duplicate.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apprise
import psycopg
from apprise.plugins.custom_json import NotifyJSON
from loguru import logger
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from db import events as events_db
from db.connection import connect
from scheduler.diff import diff_article, render_text

_BATCH = 50
# Safety net: even without a NOTIFY (a listener reconnecting) pending work is looked at this often.
_POLL_SECONDS = 5.0

_TITLES = {
    "new": "新文章 new article",
    "edited": "文章修改 article edited",
    "deleted": "文章删除 article deleted",
    "restored": "文章恢复 article restored",
    "failing": "来源异常 source failing",
    "recovered": "来源恢复 source recovered",
    "test": "haowatch test",
}


# Apprise's own log lines can quote a whole URL, secrets included: never let them reach our logs.
# What matters of a failure is kept per thread (senders run in parallel) and logged by us, URL masked.
class _LastWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[str] = getattr(self.local, "lines", [])
        lines.append(record.getMessage())
        self.local.lines = lines[-5:]

    def take(self) -> list[str]:
        lines: list[str] = getattr(self.local, "lines", [])
        self.local.lines = []
        return lines


_warnings = _LastWarnings()
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False
_apprise_log.addHandler(_warnings)


class InvalidNotifyURL(ValueError):
    """Apprise does not understand the URL."""


def _plugin(url: str) -> Any:
    # Apprise logs through the standard logging module; keep its lines out of our output.
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    _warnings.take()
    if not plugin:
        raise InvalidNotifyURL("not a notification URL Apprise understands (examples: json://host/path,"
                               " mailto://user:pass@host, tgram://bottoken/chatid)")
    return plugin


def check_url(url: str) -> str:
    """Validate a notification URL; return it with its secrets hidden (for printing)."""
    # The query part holds Apprise's options (method, retry, ...), not secrets: leave it out for brevity.
    return str(_plugin(url).url(privacy=True)).split("?", 1)[0]


_USERINFO = re.compile(r"^([a-z0-9+.-]+://)[^/@?#]*@", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"([?&](?:token|key|secret|password|pass|apikey|webhook|access_token)=)[^&#]*",
                           re.IGNORECASE)


def private_url(url: str) -> str:
    """The URL with secrets hidden: Apprise's own masking, or a conservative one when it cannot parse it."""
    try:
        return check_url(url)
    except InvalidNotifyURL:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        return f"{scheme}://***" if "://" in url else "***"
    except Exception:
        return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(r"\1***@", url)).split("/", 3)[0] + "/***"


@functools.lru_cache(maxsize=256)
def _private_cached(url: str) -> str:
    return private_url(url)


# --- messages ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """What is sent for one event: a title and text for people, a document for JSON webhooks."""

    title: str
    text: str
    document: dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def build_message(conn: psycopg.Connection[DictRow], event: events_db.Event, site_url: str = "") -> Message:
    """Render an event: article facts, the diff of an edit, the source's status."""
    doc: dict[str, Any] = {
        "event_id": event.id, "kind": event.kind, "created_at": _iso(event.created_at),
        "source_tid": event.source_tid, "docid": event.docid, "title": event.title, **event.payload,
    }
    lines: list[str] = []
    heading = _TITLES.get(event.kind, event.kind)
    if event.docid:
        art = events_db.article_summary(conn, event.docid)
        if art:
            doc.update(account=art["account"], url=art["url"], published_at=_iso(art["published_at"]))
            lines.append(f"{art['account'] or event.source_tid or ''}: {event.title or art['title'] or ''}".strip())
            lines.append(art["url"])
            if event.kind == "new" and art["excerpt"]:
                doc["excerpt"] = art["excerpt"]
                lines.append(art["excerpt"])
        if event.kind == "edited":
            old = events_db.article_revision(conn, event.docid, int(event.payload.get("from_revision", 0)))
            new = events_db.article_revision(conn, event.docid, int(event.payload.get("to_revision", 0)))
            if old and new:
                diff = diff_article(old["title"], old["body_text"], new["title"], new["body_text"])
                doc["diff"] = render_text(diff)
                doc["diff_stats"] = diff.stats
                lines.append(f"revision {old['revision']} → {new['revision']}:")
                lines.append(doc["diff"])
    elif event.kind in ("failing", "recovered"):
        name = event.title or (events_db.source_name(conn, event.source_tid) if event.source_tid else None)
        doc["name"] = name
        lines.append(f"{event.source_tid} {name or ''}".strip())
        if event.kind == "failing":
            lines.append(f"status {event.payload.get('status')}: {event.payload.get('error') or ''}".strip())
        else:
            lines.append(f"checked ok again (was {event.payload.get('previous_status')})")
    else:
        lines.append("If you can read this, haowatch can reach this destination.")
    lines.append(f"haowatch event {event.id}")
    title = f"[haowatch] {heading}: {event.title}" if event.title else f"[haowatch] {heading}"
    return Message(title=title[:250], text="\n".join(lines), document=doc)


def send(url: str, message: Message) -> tuple[bool, str]:
    """Send one message to one Apprise URL; return (ok, error text with no secrets)."""
    try:
        plugin = _plugin(url)
    except InvalidNotifyURL as exc:
        return False, str(exc)
    if isinstance(plugin, NotifyJSON):
        # A JSON webhook also gets the event itself as a document, next to Apprise's usual fields.
        plugin.payload_extras["event_id"] = message.document["event_id"]
        plugin.payload_extras["event"] = message.document
    headers = getattr(plugin, "headers", None)
    if isinstance(headers, dict):
        headers["X-Haowatch-Event-Id"] = str(message.document["event_id"])
    _warnings.take()
    try:
        ok = bool(plugin.notify(body=message.text, title=message.title))
    except Exception as exc:  # a plugin's bug must not stop the dispatcher
        return False, f"{type(exc).__name__}: {exc}"[:300]
    text = _warnings.take()
    if ok:
        return True, ""
    return False, (text[-1] if text else "the destination refused the message")[:500]


# --- the dispatcher ------------------------------------------------------------------------------------


def backoff_seconds(attempts: int, base: int, cap: int) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: base, 2·base, 4·base … up to cap."""
    return float(min(cap, base * 2 ** min(max(attempts - 1, 0), 30)))


class Dispatcher:
    """A thread that delivers pending events until stopped."""

    def __init__(self, database_url: str, *, max_attempts: int, retry_seconds: int, max_backoff_seconds: int,
                 lease_seconds: int, site_url: str = "", counters: MutableMapping[str, int] | None = None,
                 senders: int = 4) -> None:
        self.database_url = database_url
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.lease_seconds = lease_seconds
        self.site_url = site_url
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        # Destinations answer slowly (hundreds of ms is common): send several at a time.
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="notify")
        self._connections: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            database_url, min_size=1, max_size=senders, open=False,
                                           kwargs={"autocommit": True, "row_factory": dict_row,
                                                   "application_name": "haowatch-notify"})
        # Shared with the service's counters, so /metrics shows notify_delivered, notify_failed, notify_dead.
        self.counters: MutableMapping[str, int] = counters if counters is not None else Counter()

    def start(self) -> None:
        self._connections.open(wait=False)
        for target, name in ((self._run, "dispatcher"), (self._listen, "dispatcher-listen")):
            thread = threading.Thread(target=target, daemon=True, name=name)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._connections.close()

    def deliver_due(self) -> int:
        """Claim and send every due delivery (batch after batch, ``senders`` at a time); return how many."""
        attempted = 0
        while not self.stopping.is_set():
            with connect(self.database_url) as conn:
                batch = events_db.claim_deliveries(conn, _BATCH, self.lease_seconds)
            if not batch:
                return attempted
            # A claimed delivery left unsent (stopping) is sent again once its lease expires.
            list(self._pool.map(self._deliver_one, batch))
            attempted += len(batch)
        return attempted

    def _deliver_one(self, delivery: events_db.Delivery) -> None:
        if self.stopping.is_set():
            return
        with self._connections.connection() as conn:
            self._deliver(conn, delivery)

    def _deliver(self, conn: psycopg.Connection[DictRow], delivery: events_db.Delivery) -> None:
        event = delivery.event
        try:
            message = build_message(conn, event, self.site_url)
        except psycopg.DataError as exc:
            ok, error = False, f"cannot render event: {exc}"
        else:
            ok, error = send(delivery.url, message)
        where = _private_cached(delivery.url)
        if ok:
            events_db.mark_delivered(conn, event.id, delivery.subscription_id)
            self.counters["notify_delivered"] = self.counters.get("notify_delivered", 0) + 1
            logger.info("event {} ({}) delivered to subscription {} ({})", event.id, event.kind,
                        delivery.subscription_id, where)
            return
        dead = delivery.attempts >= self.max_attempts
        delay = backoff_seconds(delivery.attempts, self.retry_seconds, self.max_backoff_seconds)
        events_db.mark_failed(conn, event.id, delivery.subscription_id, error, retry_in_seconds=delay, dead=dead)
        key = "notify_dead" if dead else "notify_failed"
        self.counters[key] = self.counters.get(key, 0) + 1
        if dead:
            logger.error("event {} to subscription {} ({}) given up after {} attempts: {}", event.id,
                         delivery.subscription_id, where, delivery.attempts, error)
        else:
            logger.warning("event {} to subscription {} ({}) failed (attempt {}), retry in {:.0f}s: {}",
                           event.id, delivery.subscription_id, where, delivery.attempts, delay, error)

    def _run(self) -> None:
        while not self.stopping.is_set():
            wait = _POLL_SECONDS
            try:
                self.deliver_due()
                with connect(self.database_url) as conn:
                    due_in = events_db.next_due_in(conn)
                if due_in is not None:
                    wait = min(wait, max(0.05, due_in))
            except psycopg.Error as exc:
                logger.warning("dispatcher: database unavailable ({}); retrying", str(exc).splitlines()[0])
            self._wake.wait(wait)
            self._wake.clear()

    def _listen(self) -> None:
        while not self.stopping.is_set():
            try:
                with connect(self.database_url) as conn:
                    events_db.listen_for_events(conn)
                    self._wake.set()  # anything committed while we were not listening
                    while not self.stopping.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.OperationalError as exc:
                if self.stopping.is_set():
                    return
                logger.warning("dispatcher listener lost its connection ({}); retrying",
                               str(exc).splitlines()[0] if str(exc) else exc)
                time.sleep(5.0)
