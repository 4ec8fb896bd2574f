"""The HTTP server: feeds of every kind, conditional GET, the token, metrics, the status page, /healthz."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import feedparser_rs
import pytest

from crawler.extract import ArticlePage, content_hash, parse_page
from crawler.pipelines import article_record
from db import articles as articles_db
from db.connection import connect
from scheduler.config import load_settings
from scheduler.health import HealthServer, StartupError
from scheduler.service import Service
from tests import standin
from tests.helpers import run_cli
from tests.receiver import free_port
from tests.standin import StandinSite
from tests.test_events import TID_A, TID_B, crawl_env, docid, haowatch, make_every_kind, site  # noqa: F401 - fixture

FIXTURE = Path(__file__).parent / "fixtures" / "article" / "images_video_statement"
SCREENSHOT = Path("/work/wt/i12-status.png")


class FakeService:
    """Stands in for the scheduler side only (healthy or not); the database and server are real."""

    def __init__(self, healthy: bool = True, problem: str | None = None) -> None:
        self.healthy = healthy
        self.problem = problem
        self.counters: Counter[str] = Counter()

    def health_problem(self) -> str | None:
        return self.problem


def parse_feed(response: tuple[int, dict[str, str], bytes]) -> Any:
    """Parse as a feed reader does. feedparser 6.0 reads Atom and RSS but not JSON Feed; JSON Feed is
    read by feedparser-rs (same API), which also re-checks the XML feeds."""
    body = response[2]
    again = feedparser_rs.parse(body)
    assert not again.bozo, again.bozo_exception
    if response[1].get("Content-Type", "").startswith("application/feed+json"):
        return again
    return feedparser.parse(body)


def content_of(entry: Any) -> str:
    contents = getattr(entry, "content", None) or []
    return str(contents[0].value) if contents else str(entry.summary)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def server(db_url: str) -> Iterator[str]:
    port = free_port()
    srv = HealthServer("127.0.0.1", port, db_url, FakeService())
    srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()


def store_fixture_article(db_url: str) -> str:
    meta = json.loads((FIXTURE / "meta.json").read_text())
    page = parse_page((FIXTURE / "page.html").read_bytes(), url=meta["url"])
    assert isinstance(page, ArticlePage), page
    with connect(db_url) as conn:
        articles_db.store_article(conn, article_record(page), source_tid=TID_A,
                                  content_hash=content_hash(page.body_paragraphs), fetched_at=datetime.now(UTC))
    return page.docid


@pytest.fixture
def populated(site: StandinSite, db_url: str) -> str:  # noqa: F811
    make_every_kind(site, db_url)
    return store_fixture_article(db_url)


def test_every_feed_kind_parses_and_carries_the_full_text(populated: str, server: str) -> None:
    image_docid = populated
    for fmt in ("atom", "rss", "json"):
        resp = get(f"{server}/feeds/all.{fmt}")
        assert resp[0] == 200, resp[2][:300]
        parsed = parse_feed(resp)
        assert not parsed.bozo, (fmt, parsed.get("bozo_exception"))
        assert parsed.version in {"atom10", "rss20", "json11"}, parsed.version
        titles = [e.title for e in parsed.entries]
        assert "白俄罗斯新标题" in titles and "小城里的一天" in titles and "将被删除的文章" not in titles
        entry = next(e for e in parsed.entries if e.title == "小城里的一天")
        content = content_of(entry)
        assert "卖豆浆的老王" in content and "<img" in content and "a1b2c3d4j00t1000000000c000u000k0c.jpg" in content
        assert image_docid in entry.link
        edited = next(e for e in parsed.entries if e.title == "白俄罗斯新标题")
        assert "改成了新的说法" in content_of(edited)

        resp = get(f"{server}/feeds/source/{TID_B}.{fmt}")
        parsed = parse_feed(resp)
        assert resp[0] == 200 and not parsed.bozo and [e.title for e in parsed.entries] == ["乙的文章"]

        resp = get(f"{server}/feeds/search.{fmt}?q=" + urllib.parse.quote("新标题"))
        parsed = parse_feed(resp)
        assert resp[0] == 200 and not parsed.bozo and [e.title for e in parsed.entries] == ["白俄罗斯新标题"]

        # The full-text search_articles() finds words of the body too.
        resp = get(f"{server}/feeds/search.{fmt}?q=" + urllib.parse.quote("改成了"))
        assert [e.title for e in parse_feed(resp).entries] == ["白俄罗斯新标题"]

        resp = get(f"{server}/feeds/changes.{fmt}")
        parsed = parse_feed(resp)
        assert resp[0] == 200 and not parsed.bozo
        kinds = [e.title.split("]")[0] for e in parsed.entries]
        assert sorted(kinds) == sorted(["[删除", "[修改"]), kinds
        change = next(e for e in parsed.entries if e.title.startswith("[修改"))
        text = content_of(change)
        if fmt == "json":  # feedparser-rs sanitises <ins>/<del> away; read the feed's own HTML
            text = next(i["content_html"] for i in json.loads(resp[2])["items"] if i["title"].startswith("[修改"))
        assert "<ins>" in text and "改成了" in text and "<del>" in text

        assert len(parse_feed(get(f"{server}/feeds/all.{fmt}?limit=2")).entries) == 2


def test_conditional_get_answers_304(populated: str, server: str, db_url: str) -> None:
    status, headers, _ = get(f"{server}/feeds/all.atom")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and etag and modified
    assert get(f"{server}/feeds/all.atom", {"If-None-Match": etag})[0] == 304
    assert get(f"{server}/feeds/all.atom", {"If-Modified-Since": modified})[0] == 304
    assert get(f"{server}/feeds/all.atom", {"If-None-Match": '"other"'})[0] == 200
    assert get(f"{server}/feeds/all.atom", {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200
    # A reader with an old copy gets the new article after a change.
    with connect(db_url) as conn:
        conn.execute("INSERT INTO articles (docid, url, title, content_hash, body_html, first_seen_at)"
                     " VALUES (%s, 'https://www.163.com/dy/article/x.html', '后来的文章', 'hx', '<p>x</p>',"
                     " now() + interval '1 minute')", (docid(9),))
    status, headers, body = get(f"{server}/feeds/all.atom", {"If-None-Match": etag})
    assert status == 200 and "后来的文章" in body.decode() and headers["ETag"] != etag


def test_bad_feed_requests_are_refused_plainly(server: str) -> None:
    for path, code in (("/feeds/all.atom?limit=0", 400), ("/feeds/all.atom?limit=abc", 400),
                       ("/feeds/all.atom?limit=100000", 400), ("/feeds/search.rss", 400),
                       ("/feeds/source/T12.atom", 404), ("/feeds/nope.atom", 404), ("/feeds/all.xml", 404)):
        assert get(server + path)[0] == code, path
    req = urllib.request.Request(f"{server}/feeds/all.atom", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 405


def test_metrics_keep_their_series_names(populated: str, server: str) -> None:
    status, headers, body = get(f"{server}/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    for series in ("haowatch_up 1.0", 'haowatch_sources{state="enabled"} 2.0', "haowatch_sources_by_status{",
                   "haowatch_due_backlog ", "haowatch_schedule_lag_seconds ",
                   "haowatch_last_success_timestamp_seconds ",
                   "haowatch_crawls_total ", "haowatch_requests_total ", "haowatch_new_articles_total ",
                   "haowatch_updated_articles_total ", "haowatch_deleted_articles_total ", "haowatch_errors_total ",
                   'haowatch_articles{state="live"}', "haowatch_scheduler_running 1.0", "haowatch_healthy 1.0",
                   'haowatch_event_deliveries{state="pending"}', "haowatch_crawls_aborted_total "):
        assert series in text, series
    from prometheus_client.parser import text_string_to_metric_families

    names = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert {"haowatch_up", "haowatch_articles_today", "haowatch_new_articles_total"} <= names


def test_token_guards_everything_but_healthz(db_url: str) -> None:
    with pytest.raises(StartupError, match="HAOWATCH_HTTP_TOKEN"):
        HealthServer("0.0.0.0", free_port(), db_url, FakeService()).start()
    out = run_cli("run", db_url=db_url, env={"HAOWATCH_HTTP_HOST": "0.0.0.0", "HAOWATCH_HTTP_PORT": str(free_port())})
    assert out.returncode == 1 and "HAOWATCH_HTTP_TOKEN" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    port = free_port()
    srv = HealthServer("0.0.0.0", port, db_url, FakeService(), token="s3cret-token")
    srv.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert get(f"{base}/healthz")[0] == 200
        for path in ("/", "/metrics", "/feeds/all.atom", "/feeds/changes.json"):
            assert get(base + path)[0] == 401, path
            assert get(base + path, {"Authorization": "Bearer wrong"})[0] == 401, path
            assert get(base + path, {"Authorization": "Bearer s3cret-token"})[0] == 200, path
            assert get(base + path + "?token=s3cret-token")[0] == 200, path
        # Links on the page keep the token, so a person who opened it with ?token= can click on.
        page = get(f"{base}/?token=s3cret-token")[2].decode()
        assert "/feeds/all.atom?token=s3cret-token" in page
    finally:
        srv.stop()


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium package is needed (apt-get install -y chromium)"
    return path


def _chromium_run(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", *extra, url],
            capture_output=True, text=True, timeout=120, check=False,
        )


def test_status_page_renders_in_chromium(site: StandinSite, db_url: str, tmp_path: Path) -> None:  # noqa: F811
    make_every_kind(site, db_url)
    store_fixture_article(db_url)
    broken = "T1000000000008"
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, name) VALUES (%s, '改版的号')", (broken,))
    site.add_account(broken, "改版的号")
    site.script(f"/dy/media/{broken}.html", standin.body(b"<html><body><div>new layout</div></body></html>"))
    site.script(f"/dy/media/{TID_B}.html", *[standin.status(503)] * 10)
    for tid in (broken, TID_B):  # both checks fail: the crawl says so with exit code 1
        assert run_cli("crawl", tid, db_url=db_url, env=crawl_env(site), timeout=180).returncode == 1
    port = free_port()
    srv = HealthServer("127.0.0.1", port, db_url, FakeService())
    srv.start()
    try:
        url = f"http://127.0.0.1:{port}/"
        dom = _chromium_run(url, "--dump-dom", "--virtual-time-budget=3000")
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = tmp_path / "status.png"
        pic = _chromium_run(url, f"--screenshot={shot}", "--window-size=420,1400", "--hide-scrollbars")
        assert pic.returncode == 0 and shot.stat().st_size > 10_000, pic.stderr[-2000:]
        wide = tmp_path / "status-wide.png"
        _chromium_run(url, f"--screenshot={wide}", "--window-size=1100,1500", "--hide-scrollbars")
    finally:
        srv.stop()
    with open(shot, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">I", head[16:20])[0] == 420
    try:
        shutil.copyfile(wide if wide.exists() else shot, SCREENSHOT)
        shutil.copyfile(shot, SCREENSHOT.with_name("i12-status-phone.png"))
    except OSError:
        pass  # only a copy for the report; not every machine has that folder
    from lxml import html as lxml_html

    doc = lxml_html.fromstring(dom.stdout)
    assert (doc.findtext(".//h1") or "").startswith("haowatch")
    assert "Healthy" in doc.get_element_by_id("health").text_content()
    rows = doc.xpath("//table//tbody/tr")
    states = [r.get("class") for r in rows]
    # Failing and degraded sources come first; healthy ones after them.
    assert states[:2] == ["failing", "degraded"] and states[2:] == ["ok"], states
    first = rows[0].text_content()
    assert "乙号" in first and TID_B in first and "HTTP 503" in first
    assert "改版的号" in rows[1].text_content() and "parse_failed" in rows[1].text_content()
    ok_row = rows[2].text_content()
    assert "甲号" in ok_row and "ago" in ok_row and "in " in ok_row  # last and next check
    assert [td.text_content() for td in rows[2].xpath("./td")][4] == "3"  # today's new articles of 甲号
    recent = [a.text_content() for a in doc.xpath("//h2[@id='articles']/following-sibling::ul[1]/li/a")]
    assert "小城里的一天" in recent and "白俄罗斯新标题" in recent
    changes = doc.xpath("//div[contains(@class, 'change')]")
    text = " ".join(c.text_content() for c in changes)
    assert "edited 修改" in text and "deleted 删除" in text and "将被删除的文章" in text
    assert doc.xpath("//div[contains(@class,'change')]//ins") and doc.xpath("//div[contains(@class,'change')]//del")
    assert not doc.xpath("//script")


# --- /healthz tells the truth ------------------------------------------------------------------------


def test_healthz_gives_reasons(db_url: str) -> None:
    cases = [
        (FakeService(healthy=False), db_url, 503, "scheduler not running"),
        (FakeService(), "postgresql://nobody@127.0.0.1:1/none", 503, "database unreachable"),
        (FakeService(problem="no due source checked successfully in the last 5 crawls"), db_url, 503,
         "no due source checked successfully"),
        (FakeService(), db_url, 200, None),
    ]
    for service, url, code, reason in cases:
        port = free_port()
        srv = HealthServer("127.0.0.1", port, url, service)
        srv.start()
        try:
            status, _, body = get(f"http://127.0.0.1:{port}/healthz")
            data = json.loads(body)
            assert status == code and ((reason is None and data["reason"] is None) or reason in data["reason"])
            metrics = get(f"http://127.0.0.1:{port}/metrics")[2].decode()
            assert ("haowatch_healthy 1.0" if code == 200 else "haowatch_healthy 0.0") in metrics
            if reason:
                assert 'haowatch_unhealthy_reason{reason="' + reason in metrics
                status_out = run_cli("status", db_url=db_url, env={"HAOWATCH_HTTP_PORT": str(port)})
                assert status_out.returncode == 0 and f"service:  UNHEALTHY: {reason}" in status_out.stdout
        finally:
            srv.stop()
    out = run_cli("status", db_url=db_url, env={"HAOWATCH_HTTP_PORT": str(free_port())})
    assert "service:  not running here" in out.stdout


def test_healthz_turns_503_when_every_crawl_fails_and_back_when_one_succeeds(
    site: StandinSite, db_url: str  # noqa: F811
) -> None:
    from tests.test_service import start_service, wait_for

    tids = [TID_A, TID_B, "T1000000000009"]
    site.add_account(tids[2], "丙号")
    with connect(db_url) as conn:
        for tid in tids:
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (tid,))
    for n, tid in enumerate(tids, start=1):
        site.publish(tid, docid(n), "文章", ["正文内容。"])
        site.script(f"/dy/media/{tid}.html", *[standin.status(404)] * 1000)
    port = free_port()
    # Every check fails, and failing sources are retried every second: tick after tick without a
    # successful check.
    proc = start_service(site, db_url, port, HAOWATCH_HEALTH_STALE_TICKS="2", HAOWATCH_MAX_BACKOFF="1s",
                         HAOWATCH_RETRY_TIMES="0")
    health = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_for(lambda: _answers(health) and get(health)[0] == 503, 120, "503 after failing checks")
        data = json.loads(get(health)[2])
        assert "no due source checked successfully in the last" in data["reason"]
        for tid in tids:  # the pages are back
            site.unscript(f"/dy/media/{tid}.html")
        wait_for(lambda: get(health)[0] == 200, 120, "200 after a good check")
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def _answers(url: str) -> bool:
    try:
        get(url)
        return True
    except OSError:
        return False


def test_healthz_turns_503_when_ticks_keep_raising(db_url: str) -> None:
    settings = load_settings({"DATABASE_URL": db_url, "HAOWATCH_ENV_FILE": "/nonexistent",
                              "HAOWATCH_TICK_SECONDS": "1", "HAOWATCH_HEALTH_STALE_TICKS": "2"})
    service = Service(settings, db_url)
    port = free_port()
    srv = HealthServer("127.0.0.1", port, db_url, service)
    srv.start()
    with connect(db_url) as conn:
        conn.execute("ALTER TABLE sources RENAME TO sources_away")  # every tick now raises UndefinedTable
    service.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
            time.sleep(0.2)
        status, _, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and "ticks raised" in json.loads(body)["reason"]
        assert "UndefinedTable" in json.loads(body)["reason"]
        with connect(db_url) as conn:
            conn.execute("ALTER TABLE sources_away RENAME TO sources")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and get(f"http://127.0.0.1:{port}/healthz")[0] != 200:
            time.sleep(0.2)
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        service.stop()
        srv.stop()


def test_a_client_hanging_up_prints_no_traceback(db_url: str, capfd: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    srv = HealthServer("127.0.0.1", port, db_url, FakeService())
    srv.start()
    try:
        for request in (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", b"GET /feeds/all.atom HTTP/1.1\r\n\r\n", b"GE"):
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(request)
                # Reset instead of a clean close: the server sees ECONNRESET mid-request or mid-reply.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        time.sleep(1)
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        srv.stop()
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert "ConnectionResetError" not in err
