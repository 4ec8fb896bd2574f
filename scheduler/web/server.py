"""``haowatch run``'s HTTP server: ``/healthz``, ``/metrics``, feeds and the status page. Read-only.

Bound to 127.0.0.1 by default. Bound anywhere else it needs ``HAOWATCH_HTTP_TOKEN`` (refused at
start without one), and then every path but ``/healthz`` wants the token, as
``Authorization: Bearer …`` or ``?token=…`` (feed readers can only do the latter). A token that is
set is required on loopback too.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import json
import re
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg
from loguru import logger
from psycopg.rows import DictRow

from crawler.ids import InvalidSourceId, parse_tid
from db import events as events_db
from db import status as status_db
from db import web as web_db
from db.connection import connect
from scheduler.diff import diff_article, render_html
from scheduler.health import StartupError
from scheduler.web import feeds, metrics
from scheduler.web.page import render_status_page

DEFAULT_FEED_ITEMS = 50
MAX_FEED_ITEMS = 1000
STATUS_PAGE_SOURCES = 500
_FEED_RE = re.compile(r"^/feeds/(all|changes|search|source/(?P<tid>[^/]+))\.(?P<fmt>atom|rss|json)$")
_QUERY_TIMEOUT_SECONDS = 10


class _Service(Protocol):
    counters: Any

    @property
    def healthy(self) -> bool: ...


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is ordinary; anything else is one log line, never a traceback.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | socket.timeout):
            return
        logger.warning("http: request from {} failed: {}: {}", client_address[0], type(exc).__name__,
                       str(exc)[:200])


class HealthServer:
    """The threaded HTTP server; each request asks the database afresh (with a short timeout)."""

    def __init__(self, host: str, port: int, database_url: str, service: _Service, token: str | None = None,
                 site_url: str = "") -> None:
        self.host, self.port = host, port
        self.database_url = database_url
        self.service = service
        self.token = token
        self.site_url = site_url
        self._server: _Server | None = None

    # --- health ------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why the service is unhealthy, or None: scheduler stopped, database unreachable, no progress."""
        if not self.service.healthy:
            return "scheduler not running"
        try:
            with psycopg.connect(self.database_url, connect_timeout=3, autocommit=True,
                                 row_factory=psycopg.rows.dict_row) as conn:
                web_db.limit_statement_time(conn, 3)
                if not web_db.ping(conn):
                    return "database unreachable"
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"database unreachable: {first[:200]}"
        reason: Callable[[], str | None] | None = getattr(self.service, "health_problem", None)
        return reason() if callable(reason) else None

    # --- data ----------------------------------------------------------------------------------

    def _conn(self) -> psycopg.Connection[DictRow]:
        conn = connect(self.database_url)
        web_db.limit_statement_time(conn, _QUERY_TIMEOUT_SECONDS)
        return conn

    def _metrics(self) -> bytes:
        problem = self.problem()

        def snapshot() -> tuple[Mapping[str, Any] | None, Mapping[str, float], str | None, Mapping[str, int] | None]:
            counters: dict[str, float] = dict(self.service.counters)
            counters["scheduler_running"] = 1.0 if self.service.healthy else 0.0
            try:
                with self._conn() as conn:
                    return status_db.overview(conn), counters, problem, events_db.delivery_counts(conn)
            except psycopg.Error as exc:
                logger.warning("metrics: database unavailable: {}", (str(exc).splitlines() or ["?"])[0])
                return None, counters, problem, None

        return metrics.render(snapshot)

    def _feed_items(self, kind: str, tid: str | None, query: str, limit: int) -> tuple[feeds.FeedMeta,
                                                                                     list[feeds.FeedItem]]:
        base = self.site_url or "https://www.163.com"
        with self._conn() as conn:
            if kind == "changes":
                rows = web_db.change_events(conn, limit)
                items = [self._change_item(conn, r) for r in rows]
                return feeds.FeedMeta("urn:haowatch:feed:changes", "haowatch: 修改与删除 edits and deletions", "",
                                      base, "Edits (with what changed) and deletions of watched articles"), items
            if kind == "search":
                rows = web_db.search_feed_articles(conn, query, limit)
                title = f"haowatch: 搜索 {query}"
                about = f"Articles matching {query!r}"
            elif tid:
                rows = web_db.feed_articles(conn, limit, source_tid=tid)
                name = events_db.source_name(conn, tid) or (rows[0]["account"] if rows else None) or tid
                title, about = f"haowatch: {name}", f"Articles of 网易号 {name} ({tid}), full text"
                base = f"{base}/dy/media/{tid}.html"
            else:
                rows = web_db.feed_articles(conn, limit)
                title, about = "haowatch: 全部文章 all articles", "Every article of the watched accounts, full text"
        feed_id = f"urn:haowatch:feed:{kind}" + (f":{tid}" if tid else "") + (f":{query}" if query else "")
        return feeds.FeedMeta(feed_id, title, "", base, about), [feeds.article_item(r) for r in rows]

    def _change_item(self, conn: psycopg.Connection[DictRow], row: Mapping[str, Any]) -> feeds.FeedItem:
        when = row["created_at"]
        payload = row["payload"] or {}
        docid = row["docid"] or ""
        if row["kind"] == "edited":
            diff_html = self._diff_html(conn, docid, payload)
            content = (f"<p>修改 edited: revision {payload.get('from_revision')} → {payload.get('to_revision')}</p>"
                       f"{diff_html}<hr>{row['body_html'] or ''}")
            title = f"[修改] {row['title'] or docid}"
        else:
            verb = "删除 deleted" if row["kind"] == "deleted" else "恢复 restored"
            content = f"<p>{verb} {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC</p><hr>{row['body_html'] or ''}"
            title = f"[{verb.split()[0]}] {row['title'] or docid}"
        return feeds.FeedItem(id=f"urn:haowatch:event:{row['id']}", title=title, link=row["url"] or "",
                              content_html=content, summary=f"{row['kind']} {row['title'] or docid}",
                              published=when, updated=when, author=row["account"],
                              tags=(row["kind"],) + ((row["source_tid"],) if row["source_tid"] else ()))

    @staticmethod
    def _diff_html(conn: psycopg.Connection[DictRow], docid: str, payload: Mapping[str, Any]) -> str:
        try:
            old = events_db.article_revision(conn, docid, int(payload.get("from_revision", 0)))
            new = events_db.article_revision(conn, docid, int(payload.get("to_revision", 0)))
        except (TypeError, ValueError):
            return ""
        if not old or not new:
            return ""
        return render_html(diff_article(old["title"], old["body_text"], new["title"], new["body_text"]))

    def _status_page(self, token_query: str) -> bytes:
        problem = self.problem()
        with self._conn() as conn:
            overview = status_db.overview(conn)
            sources = web_db.status_sources(conn, STATUS_PAGE_SOURCES)
            total = web_db.count_sources(conn)
            articles = web_db.feed_articles(conn, 20)
            changes = [dict(r) for r in web_db.change_events(conn, 10)]
            for r in changes:
                if r["kind"] == "edited":
                    r["diff_html"] = self._diff_html(conn, r["docid"] or "", r["payload"] or {})
        page = render_status_page(problem=problem, overview=overview, sources=sources, total_sources=total,
                                  articles=articles, changes=changes, feeds_query=token_query)
        return page.encode("utf-8")

    # --- HTTP ----------------------------------------------------------------------------------

    def _authorised(self, handler: BaseHTTPRequestHandler, query: Mapping[str, list[str]]) -> bool:
        if not self.token:
            return True
        header = handler.headers.get("Authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else (query.get("token") or [""])[0]
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("utf-8"))

    def handle(self, handler: BaseHTTPRequestHandler, head_only: bool = False) -> None:
        parts = urlsplit(handler.path)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        if path == "/healthz":
            problem = self.problem()
            body = {"status": "ok" if problem is None else "unhealthy", "reason": problem,
                    "scheduler": bool(self.service.healthy), "database": not (problem or "").startswith("database")}
            self._reply(handler, 200 if problem is None else 503, json.dumps(body).encode(), "application/json",
                        head_only=head_only)
            return
        if not self._authorised(handler, query):
            self._reply(handler, 401, b"token required (Authorization: Bearer ... or ?token=...)\n", "text/plain",
                        extra={"WWW-Authenticate": 'Bearer realm="haowatch"'}, head_only=head_only)
            return
        token_query = "?" + urlencode({"token": query["token"][0]}) if self.token and query.get("token") else ""
        try:
            if path == "/metrics":
                self._reply(handler, 200, self._metrics(), metrics.CONTENT_TYPE, head_only=head_only)
            elif path == "/":
                self._reply(handler, 200, self._status_page(token_query), "text/html; charset=utf-8",
                            head_only=head_only, extra={"Cache-Control": "no-cache"})
            elif (match := _FEED_RE.match(path)) is not None:
                self._feed(handler, match, query, head_only)
            else:
                self._reply(handler, 404, b"not found\n", "text/plain", head_only=head_only)
        except psycopg.Error as exc:
            logger.warning("http {}: database unavailable: {}", path, (str(exc).strip().splitlines() or ["?"])[0])
            self._reply(handler, 503, b"database unavailable\n", "text/plain", head_only=head_only)

    def _feed(self, handler: BaseHTTPRequestHandler, match: re.Match[str], query: Mapping[str, list[str]],
              head_only: bool) -> None:
        fmt = match.group("fmt")
        kind = match.group(1).split("/")[0]
        tid = None
        if match.group("tid") is not None:
            try:
                tid = parse_tid(match.group("tid"))
            except InvalidSourceId:
                self._reply(handler, 404, b"not a source id (T followed by 13 digits)\n", "text/plain",
                            head_only=head_only)
                return
        raw_limit = (query.get("limit") or [str(DEFAULT_FEED_ITEMS)])[0].strip()
        if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_FEED_ITEMS:
            self._reply(handler, 400, f"limit must be 1 to {MAX_FEED_ITEMS}\n".encode(), "text/plain",
                        head_only=head_only)
            return
        q = (query.get("q") or [""])[0].strip()
        if kind == "search" and not q:
            self._reply(handler, 400, b"search needs ?q=words\n", "text/plain", head_only=head_only)
            return
        meta, items = self._feed_items(kind, tid, q[:200], int(raw_limit))
        host = handler.headers.get("Host") or f"{self.host}:{self.port}"
        self_url = f"http://{host}{handler.path.split('?')[0]}"
        meta = feeds.FeedMeta(meta.id, meta.title, self_url, meta.home_url, meta.description)
        body = feeds.render(fmt, meta, items)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        modified = max((i.updated for i in items), default=None)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if modified is not None:
            headers["Last-Modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
        if self._not_modified(handler, etag, modified):
            self._reply(handler, 304, b"", None, extra=headers, head_only=True)
            return
        self._reply(handler, 200, body, feeds.FORMATS[fmt], extra=headers, head_only=head_only)

    @staticmethod
    def _not_modified(handler: BaseHTTPRequestHandler, etag: str, modified: datetime | None) -> bool:
        if_none_match = handler.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
            return etag in tags or "*" in tags
        since = handler.headers.get("If-Modified-Since")
        if since and modified is not None:
            try:
                when = parsedate_to_datetime(since)
            except (TypeError, ValueError, IndexError):
                return False
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return modified.replace(microsecond=0) <= when
        return False

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str | None, *,
               extra: Mapping[str, str] | None = None, head_only: bool = False) -> None:
        try:
            handler.send_response(code)
            if ctype:
                handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(body)) if code != 304 else "0")
            handler.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (extra or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            if not head_only and code != 304:
                handler.wfile.write(body)
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing to tell anyone

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise StartupError(f"refusing to serve on {self.host} without HAOWATCH_HTTP_TOKEN"
                               " (set it, or bind HAOWATCH_HTTP_HOST=127.0.0.1)")
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "haowatch"
            sys_version = ""

            def do_GET(self) -> None:
                server_self.handle(self)

            def do_HEAD(self) -> None:
                server_self.handle(self, head_only=True)

            def _read_only(self) -> None:
                server_self._reply(self, 405, b"read-only\n", "text/plain", extra={"Allow": "GET, HEAD"})

            do_POST = do_PUT = do_DELETE = do_PATCH = _read_only

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            self._server = _Server((self.host, self.port), Handler)
        except OSError as exc:
            # An unknown or foreign address is the host's fault; a taken or forbidden port the port's.
            bad_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
            variable = "HAOWATCH_HTTP_HOST" if bad_host else "HAOWATCH_HTTP_PORT"
            raise StartupError(
                f"cannot serve HTTP on {self.host}:{self.port} ({exc.strerror}); set {variable}"
            ) from None
        threading.Thread(target=self._server.serve_forever, daemon=True, name="http").start()
        logger.info("status page, feeds, /healthz and /metrics on http://{}:{}/", self.host,
                    self._server.server_address[1])

    @property
    def bound_port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1]) if self._server else self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
