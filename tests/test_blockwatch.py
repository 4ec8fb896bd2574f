"""Blocks slow the whole host and recover gradually; proxies rotate with politeness per proxy."""

from __future__ import annotations

import asyncio
import itertools
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.blockwatch import FIRST_STEP, BlockSlowdownMiddleware, ProxyRotationMiddleware
from crawler.settings import OPTIONS_KEY, CrawlOptions
from db.connection import connect
from tests.helpers import run_cli
from tests.standin import StandinSite

TID = "T1536566896022"


def _response(url: str, status: int = 200,
              body: bytes = b"<html><body><p>" + b"x" * 200 + b"</p></body></html>") -> HtmlResponse:
    return HtmlResponse(url, status=status, body=body, headers={"Content-Type": "text/html; charset=utf-8"})


def test_blocks_slow_the_whole_host_and_recover_gradually() -> None:
    middleware = BlockSlowdownMiddleware(get_crawler(settings_dict={OPTIONS_KEY: CrawlOptions(block_slowdown_max=8.0)}))
    account = Request("https://www.163.com/dy/media/T1536566896022.html")
    other_source = Request("https://www.163.com/dy/article/K00000010514R9KQ.html")
    elsewhere = Request("https://dy.163.com/v2/article/list.do?pageNo=1")
    spacings = []
    for _ in range(5):
        middleware.process_response(account, _response(account.url, 403, b"forbidden"))
        spacings.append(middleware.spacing["www.163.com"])
    assert spacings == [FIRST_STEP, 2.0, 4.0, 8.0, 8.0]  # doubles per block, capped
    assert middleware.spacing.get("dy.163.com", 0.0) == 0.0  # another host is not slowed
    # Every request to the host waits, whichever source it is for.
    middleware.spacing["www.163.com"] = 0.2

    async def two_requests() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await middleware.process_request(other_source)
        await middleware.process_request(account)
        await middleware.process_request(elsewhere)
        return loop.time() - start

    assert asyncio.run(two_requests()) >= 0.19
    middleware.spacing["www.163.com"] = 8.0
    recovering = []
    for _ in range(14):
        middleware.process_response(other_source, _response(other_source.url))
        recovering.append(middleware.spacing["www.163.com"])
    assert all(a > b for a, b in itertools.pairwise(recovering) if a > 0)
    assert recovering[0] > 5 and recovering[-1] == 0.0  # gradual, then over


def test_waiting_requests_relax_as_soon_as_the_host_does() -> None:
    middleware = BlockSlowdownMiddleware(get_crawler(settings_dict={OPTIONS_KEY: CrawlOptions(block_slowdown_max=120)}))
    middleware.spacing["www.163.com"] = 120.0
    requests = [Request(f"https://www.163.com/dy/article/K{n:07d}0514R9KQ.html") for n in range(20)]

    async def queue_then_relax() -> float:
        loop = asyncio.get_running_loop()
        waiting = [asyncio.ensure_future(middleware.process_request(r)) for r in requests]
        await asyncio.sleep(0.2)
        assert sum(w.done() for w in waiting) == 1  # one turn per 120 s
        start = loop.time()
        middleware.spacing["www.163.com"] = 0.0  # the host answers normally again
        await asyncio.gather(*waiting)
        return loop.time() - start

    # Not 19 turns of 120 s booked while the host was blocking: every waiting request goes on at once.
    assert asyncio.run(queue_then_relax()) < 2.5


def test_a_captcha_page_counts_as_a_block_in_the_middleware() -> None:
    middleware = BlockSlowdownMiddleware(get_crawler(settings_dict={OPTIONS_KEY: CrawlOptions(block_slowdown_max=8.0)}))
    request = Request("https://www.163.com/dy/media/T1536566896022.html")
    captcha = "<html><body><p>访问过于频繁，请稍后再试</p></body></html>".encode()
    middleware.process_response(request, _response(request.url, 200, captcha))
    assert middleware.spacing["www.163.com"] == FIRST_STEP


def test_proxies_rotate_each_in_its_own_download_slot() -> None:
    crawler = get_crawler(settings_dict={
        OPTIONS_KEY: CrawlOptions(proxies=("http://127.0.0.1:1", "http://u:p@127.0.0.1:2"))})
    middleware = ProxyRotationMiddleware(crawler)
    requests = [Request(f"https://www.163.com/dy/article/K{n:07d}0514R9KQ.html") for n in range(4)]
    for request in requests:
        middleware.process_request(request)
    assert [r.meta["proxy"] for r in requests] == ["http://127.0.0.1:1", "http://u:p@127.0.0.1:2"] * 2
    assert [r.meta["download_slot"] for r in requests] == ["www.163.com|proxy0", "www.163.com|proxy1"] * 2
    own = Request("https://www.163.com/", meta={"proxy": "http://10.0.0.1:3128"})
    middleware.process_request(own)
    assert own.meta["proxy"] == "http://10.0.0.1:3128"  # a request's own proxy is kept


class _ForwardProxy:
    """A tiny plain-HTTP forward proxy on 127.0.0.1 that counts what it forwards."""

    def __init__(self) -> None:
        self.count = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.count += 1
                upstream = urllib.request.Request(self.path, headers={
                    k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")})
                try:
                    with urllib.request.urlopen(upstream, timeout=10) as answer:
                        status, headers, body = answer.status, answer.headers, answer.read()
                except urllib.error.HTTPError as exc:
                    status, headers, body = exc.code, exc.headers, exc.read()
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxies() -> Iterator[list[_ForwardProxy]]:
    started = [_ForwardProxy(), _ForwardProxy()]
    yield started
    for proxy in started:
        proxy.stop()


def test_a_crawl_goes_through_every_proxy(proxies: list[_ForwardProxy], db_url: str) -> None:
    with StandinSite() as site:
        site.add_account(TID, "史鹷的生活科普", "W8207225059024484717")
        for n in range(1, 7):
            site.publish(TID, f"K{n:07d}0514R9KQ", f"文章{n}", [f"第{n}篇的正文，经由代理抓取。"] * 3)
        with connect(db_url) as conn:
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (TID,))
        out = run_cli("crawl", db_url=db_url, timeout=180, env={
            "HAOWATCH_SITE_URL": site.url, "HAOWATCH_LIST_API_URL": site.url, "HAOWATCH_APP_API_URL": site.url,
            "HAOWATCH_DOWNLOAD_DELAY": "0", "HAOWATCH_REQUEST_TIMEOUT": "10",
            "HAOWATCH_PROXIES": ",".join(p.url for p in proxies),
        })
        assert out.returncode == 0, out.stderr[-2000:]
        assert "6 new" in out.stdout
        counts = Counter({i: p.count for i, p in enumerate(proxies)})
        assert sum(counts.values()) == len(site.requests()) == 7
        assert min(counts.values()) >= 3  # round robin: 4 and 3
