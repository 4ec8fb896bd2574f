"""A stand-in NetEase site: a real HTTP server on 127.0.0.1 serving pages built from fixtures.

Tests publish, edit and delete articles on it, script failures for given paths (404, 503, 429 with
Retry-After, slow answers, truncated bodies, dropped connections, redirects, huge or endless
answers) and read its request log. A site can listen on any loopback address (``host``), so tests
can stand up a second, foreign host next to it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.standin_pages import render_account_page, render_article_page, render_not_found_page

# The 2024 desktop sample, as the template every stand-in article page is made from.
TEMPLATE = next((Path(__file__).parent / "fixtures" / "article").glob("*2024*/page.html"), Path("missing"))


@dataclass
class Behaviour:
    """One scripted answer: ``status`` (with headers), ``slow`` (delay, then normal),
    ``truncate`` (announce the full length, send part, close), ``cut_html`` (a complete answer whose
    HTML stops half-way), ``drop`` (close without answering), ``body`` (these bytes, with headers),
    ``huge`` (``size`` bytes of HTML streamed, announced or not), ``gzip_bomb`` (a small gzip body
    inflating to ``size`` bytes) or ``endless_headers`` (headers until the client hangs up)."""

    kind: str
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    size: int = 0
    announce: bool = True


def status(code: int, **headers: str) -> Behaviour:
    return Behaviour("status", status=code, headers={k.replace("_", "-"): v for k, v in headers.items()})


def slow(seconds: float) -> Behaviour:
    return Behaviour("slow", delay=seconds)


def truncate() -> Behaviour:
    return Behaviour("truncate")


def cut_html() -> Behaviour:
    return Behaviour("cut_html")


def drop() -> Behaviour:
    return Behaviour("drop")


def body(data: bytes, code: int = 200, **headers: str) -> Behaviour:
    return Behaviour("body", status=code, body=data, headers={k.replace("_", "-"): v for k, v in headers.items()})


def redirect(location: str, code: int = 302) -> Behaviour:
    """Answer with a redirect to ``location`` (absolute, or a path on this site)."""
    return Behaviour("status", status=code, headers={"Location": location})


def meta_refresh(location: str) -> Behaviour:
    """A 200 page whose only content is a ``<meta http-equiv=refresh>`` to ``location``."""
    html = f'<html><head><meta http-equiv="refresh" content="0; url={location}"></head><body></body></html>'
    return Behaviour("body", body=html.encode())


def huge(size: int, announce: bool = True) -> Behaviour:
    """``size`` bytes of HTML, streamed; with ``announce`` a Content-Length says so up front."""
    return Behaviour("huge", size=size, announce=announce)


def gzip_bomb(size: int) -> Behaviour:
    """A gzip body (about size/1000 bytes on the wire) that inflates to ``size`` bytes."""
    return Behaviour("gzip_bomb", size=size)


def endless_headers() -> Behaviour:
    return Behaviour("endless_headers")


_bomb_cache: dict[int, bytes] = {}


def _gzip_of_zeros(size: int) -> bytes:
    if size not in _bomb_cache:
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunk = b"\0" * (1 << 20)
        parts = [packer.compress(chunk) for _ in range(size // len(chunk))]
        parts.append(packer.compress(b"\0" * (size % len(chunk))))
        parts.append(packer.flush())
        _bomb_cache[size] = b"".join(parts)
    return _bomb_cache[size]


@dataclass
class _Article:
    docid: str
    tid: str
    title: str
    paragraphs: list[str]
    ptime: str
    thumbnail: str | None = "https://nimg.ws.126.net/?url=http%3A%2F%2Fdingyue.ws.126.net%2Fthumb.jpg"
    deleted: bool = False
    html: bytes = b""


@dataclass
class _Account:
    tid: str
    name: str
    wemedia_id: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)  # newest first, as the page lists them


class StandinSite:
    """The stand-in site. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, template_html: str | None = None, latency: float = 0.0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.template = template_html or TEMPLATE.read_text(encoding="utf-8")
        self.latency = latency  # seconds added to every answer, like a distant real site
        self.accounts: dict[str, _Account] = {}
        self.articles: dict[str, _Article] = {}
        self.scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
        self.log: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._page_cache: dict[str, bytes] = {}
        # Site variants (issue 11): how the account page looks ("normal", "redesigned" beyond
        # recognition, "blocked" with 403, "captcha", "empty" 200, "challenge"), how many items it shows,
        # items it leaves out while the list channels still list them, and list channel states.
        self.account_mode = "normal"
        self.account_page_size: int | None = None
        self.hidden_from_page: set[str] = set()
        self.list_api_mode = "normal"  # normal | blocked | garbage | empty
        self.app_list_mode = "normal"

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> str:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> StandinSite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- content -------------------------------------------------------------------------------

    def add_account(self, tid: str, name: str, wemedia_id: str | None = None) -> None:
        with self.lock:
            self.accounts[tid] = _Account(tid, name, wemedia_id)

    def publish(self, tid: str, docid: str, title: str, paragraphs: list[str],
                ptime: str = "2026-01-22 19:08:49", listed: bool = True, thumbnail: bool = True) -> None:
        """Put an article online and (by default) at the top of its account's list."""
        with self.lock:
            account = self.accounts[tid]
            article = _Article(docid, tid, title, list(paragraphs), ptime)
            if not thumbnail:
                article.thumbnail = None
            article.html = self._render(article, account).encode("utf-8")
            self.articles[docid] = article
            if listed:
                account.items.insert(0, {"docid": docid, "title": title, "time": ptime[:16],
                                         "thumbnail": article.thumbnail})

    def list_video(self, tid: str, video_id: str, title: str, time_text: str = "2026-01-22 10:00") -> None:
        with self.lock:
            self.accounts[tid].items.insert(0, {"video_id": video_id, "title": title, "time": time_text,
                                                "thumbnail": None})

    def edit(self, docid: str, *, title: str | None = None, paragraphs: list[str] | None = None) -> None:
        with self.lock:
            article = self.articles[docid]
            article.title = title or article.title
            article.paragraphs = list(paragraphs or article.paragraphs)
            article.html = self._render(article, self.accounts[article.tid]).encode("utf-8")

    def delete(self, docid: str, unlist: bool = False) -> None:
        with self.lock:
            self.articles[docid].deleted = True
            if unlist:
                account = self.accounts[self.articles[docid].tid]
                account.items = [i for i in account.items if i.get("docid") != docid]

    def script(self, path: str, *behaviours: Behaviour) -> None:
        """Answer the next requests for ``path`` with these behaviours, in order, then normally."""
        with self.lock:
            self.scripts[path].extend(behaviours)

    def unscript(self, path: str) -> None:
        """Forget the behaviours still scripted for ``path``: it answers normally from now on."""
        with self.lock:
            self.scripts.pop(path, None)

    def _render(self, article: _Article, account: _Account) -> str:
        page = render_article_page(self.template, article.docid, article.title, article.paragraphs,
                                   account.tid, account.name, article.ptime)
        # Small accounts have no W-id at all; the others carry theirs on #contain.
        page = re.sub(r'\sdata-wemediaid="[^"]*"', "", page, count=1)
        if account.wemedia_id:
            page = page.replace('id="contain"', f'id="contain" data-wemediaid="{account.wemedia_id}"', 1)
        return page

    # --- request log ---------------------------------------------------------------------------

    def requests(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [path for path, _ in self.log if path.startswith(prefix)]

    def headers_of_last(self) -> dict[str, str]:
        with self.lock:
            return self.log[-1][1]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # --- serving -------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        with self.lock:
            self.log.append((handler.path, {k.lower(): v for k, v in handler.headers.items()}))
            behaviour = self.scripts[path].popleft() if self.scripts.get(path) else None
        if self.latency:
            time.sleep(self.latency)
        if behaviour is not None and behaviour.kind == "slow":
            time.sleep(behaviour.delay)
            behaviour = None
        if behaviour is not None and behaviour.kind == "drop":
            handler.close_connection = True
            return
        if behaviour is not None and behaviour.kind in ("huge", "gzip_bomb", "endless_headers"):
            self._send_hostile(handler, behaviour)
            return
        if behaviour is not None and behaviour.kind in ("status", "body"):
            payload = behaviour.body or f"<html><body>{behaviour.status}</body></html>".encode()
            self._send(handler, behaviour.status, payload, behaviour.headers)
            return
        code, payload, ctype = self._route(handler.path)
        if behaviour is not None and behaviour.kind == "truncate":
            handler.send_response(code)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 3])
            handler.wfile.flush()
            handler.close_connection = True
            return
        if behaviour is not None and behaviour.kind == "cut_html":
            payload = payload[: len(payload) // 3]
        self._send(handler, code, payload, {"Content-Type": ctype})

    @staticmethod
    def _send_hostile(handler: BaseHTTPRequestHandler, behaviour: Behaviour) -> None:
        handler.close_connection = True
        try:
            if behaviour.kind == "endless_headers":
                handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n")
                filler = "x" * 100
                for n in range(10**9):
                    handler.wfile.write(f"X-Filler-{n}: {filler}\r\n".encode())
                return
            if behaviour.kind == "gzip_bomb":
                payload = _gzip_of_zeros(behaviour.size)
                handler.send_response(200)
                handler.send_header("Content-Type", "text/html; charset=utf-8")
                handler.send_header("Content-Encoding", "gzip")
                handler.send_header("Content-Length", str(len(payload)))
                handler.end_headers()
                handler.wfile.write(payload)
                return
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html; charset=utf-8")
            if behaviour.announce:
                handler.send_header("Content-Length", str(behaviour.size))
            handler.end_headers()
            chunk = b"<p>" + "很长的页面。".encode() * 5000 + b"</p>\n"
            sent = 0
            while sent < behaviour.size:
                piece = chunk[: behaviour.size - sent]
                handler.wfile.write(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client refused the answer part-way: what these behaviours are for

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, payload: bytes, headers: dict[str, str]) -> None:
        handler.send_response(code)
        headers = {"Content-Type": "text/html; charset=utf-8", **headers}
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, raw_path: str) -> tuple[int, bytes, str]:
        html = "text/html; charset=utf-8"
        parts = urlsplit(raw_path)
        with self.lock:
            if m := re.fullmatch(r"/dy/media/(T\d{13})\.html", parts.path):
                account = self.accounts.get(m.group(1))
                if account is None:
                    return 404, self._not_found(), html
                variant = _variant(self.account_mode)
                if variant is not None:
                    return variant[0], variant[1], html
                shown = [dict(i) for i in account.items if i.get("docid") not in self.hidden_from_page]
                if self.account_page_size is not None:
                    shown = shown[: self.account_page_size]
                page = render_account_page(account.tid, account.name, shown)
                return 200, page.encode("utf-8"), html
            if m := re.fullmatch(r"/nc/subscribe/list/(T\d{13})/all/(\d+)-(\d+)\.html", parts.path):
                variant = _variant(self.app_list_mode)
                if variant is not None:
                    return variant[0], variant[1], html
                return 200, self._app_list(m.group(1), int(m.group(2)), int(m.group(3))), "application/json"
            if m := re.fullmatch(r"/dy/article/([0-9A-Z]{16})\.html", parts.path):
                article = self.articles.get(m.group(1))
                if article is None or article.deleted:
                    return 404, self._not_found(), html
                return 200, article.html, html
            if parts.path == "/v2/article/list.do":
                variant = _variant(self.list_api_mode)
                if variant is not None:
                    return variant[0], variant[1], html
                return 200, self._list_api(parse_qs(parts.query)), "application/json;charset=UTF-8"
        return 404, self._not_found(), html

    def _not_found(self) -> bytes:
        if "404" not in self._page_cache:
            self._page_cache["404"] = render_not_found_page().encode("utf-8")
        return self._page_cache["404"]

    def _app_list(self, tid: str, offset: int, size: int) -> bytes:
        account = self.accounts.get(tid)
        docs = [i for i in account.items if "docid" in i] if account else []
        chunk = docs[offset : offset + min(size, 50)]
        items = [{"docid": i["docid"], "title": i["title"], "ptime": i["time"] + ":00",
                  "source": account.name if account else "", "digest": "", "imgsrc": i["thumbnail"] or ""}
                 for i in chunk]
        return json.dumps({"tab_list": items}, ensure_ascii=False).encode()

    def _list_api(self, query: dict[str, list[str]]) -> bytes:
        wemedia_id = (query.get("wemediaId") or [""])[0]
        page = int((query.get("pageNo") or ["1"])[0])
        size = int((query.get("size") or ["10"])[0])
        account = next((a for a in self.accounts.values() if a.wemedia_id == wemedia_id), None)
        if account is None:
            return json.dumps({"code": 0, "data": None}).encode()
        docs = [i for i in account.items if "docid" in i]
        chunk = docs[(page - 1) * size : page * size]
        if not chunk:
            return json.dumps({"code": 0, "data": None}).encode()
        items = [{"docid": i["docid"], "title": i["title"], "ptime": i["time"] + ":00", "source": account.name,
                  "imgsrc": i["thumbnail"]} for i in chunk]
        return json.dumps({"code": 0, "data": {"list": items}}, ensure_ascii=False).encode()


_CAPTCHA_PAGE = (
    "<!DOCTYPE html><html><head><title>安全验证</title></head><body><div class='verify'>"
    "<p>访问过于频繁，请稍后再试</p><p>请完成下方验证后继续访问</p><div id='captcha'></div></div></body></html>"
).encode()
_CHALLENGE_PAGE = (
    b"<html><head><script>var arg1='3A8F';document.cookie='acw_sc__v2='+arg1+';path=/';"
    b"location.reload();</script></head><body></body></html>"
)
_REDESIGNED_PAGE = (
    "<!DOCTYPE html><html><head><title>网易号</title></head><body><div id='app' data-v-1a2b>"
    "<section class='feed-2030'><article class='card-x'><span>全新改版的账号主页</span></article>"
    "</section></div><footer>网易公司版权所有</footer></body></html>"
).encode()


def _variant(mode: str) -> tuple[int, bytes] | None:
    """The answer of a channel in a non-normal ``mode`` (None: answer normally)."""
    return {
        "blocked": (403, b"<html><body><h1>403 Forbidden</h1></body></html>"),
        "captcha": (200, _CAPTCHA_PAGE),
        "challenge": (200, _CHALLENGE_PAGE),
        "empty": (200, b""),
        "redesigned": (200, _REDESIGNED_PAGE),
        "garbage": (200, b"<html><body>\xe6\x9c\x8d\xe5\x8a\xa1\xe5\x8d\x87\xe7\xba\xa7\xe4\xb8\xad</body></html>"),
    }.get(mode)
