"""The real ``haowatch run`` against the stand-in site and real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from db import maintenance
from db.connection import connect
from scheduler.health import HealthServer
from tests import standin
from tests.helpers import HAOWATCH, one
from tests.standin import StandinSite

TID_A, TID_B = "T1536566896022", "T1512041896308"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def start_service(site: StandinSite, db_url: str, port: int, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=db_url, HAOWATCH_ENV_FILE="/nonexistent", HAOWATCH_SITE_URL=site.url,
        HAOWATCH_DOWNLOAD_DELAY="0", HAOWATCH_RETRY_BACKOFF="0.05", HAOWATCH_TICK_SECONDS="1",
        HAOWATCH_HTTP_PORT=str(port), HAOWATCH_CONCURRENCY="4", **extra,
    )
    return subprocess.Popen([HAOWATCH, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def site() -> Iterator[StandinSite]:
    with StandinSite() as s:
        s.add_account(TID_A, "甲")
        s.add_account(TID_B, "乙")
        s.publish(TID_A, "K00000010514R9KQ", "文章一", ["第一段正文内容。", "第二段正文内容。"])
        s.publish(TID_B, "K00000020514R9KQ", "文章二", ["乙的正文内容。"])
        yield s


def test_run_crawls_on_interval_picks_up_sql_inserts_serves_health_and_stops(
    site: StandinSite, db_url: str
) -> None:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '2 seconds')", (TID_A,))
    port = free_port()
    proc = start_service(site, db_url, port)
    try:
        account_a = f"/dy/media/{TID_A}.html"
        wait_for(lambda: len(site.requests(account_a)) >= 2, 90, "two checks of the first source")
        with connect(db_url) as conn:
            assert one(conn, "SELECT count(*) AS n FROM articles")["n"] == 1
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (TID_B,))  # plain SQL, while running
        wait_for(lambda: len(site.requests(f"/dy/media/{TID_B}.html")) >= 1, 30, "the SQL-inserted source")
        wait_for(lambda: _count_articles(db_url) == 2, 30, "its article")

        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and json.loads(body)["database"] is True
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        for series in ("haowatch_up 1", 'haowatch_sources{state="enabled"} 2', "haowatch_crawls_total",
                       "haowatch_new_articles_total", 'haowatch_sources_by_status{status="ok"}',
                       "haowatch_last_success_timestamp_seconds", "haowatch_due_backlog",
                       'haowatch_service_crawls_total{result="ok"}'):
            assert series in metrics, series
        assert get(f"http://127.0.0.1:{port}/nope")[0] == 404

        # paused by SQL: no more checks of A
        with connect(db_url) as conn:
            conn.execute("UPDATE sources SET enabled = false WHERE tid = %s", (TID_A,))
        time.sleep(2.5)  # let a crawl that was already running finish
        before = len(site.requests(account_a))
        time.sleep(3.5)
        assert len(site.requests(account_a)) == before
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert "received SIGTERM" in err and "haowatch stopped" in err
    with connect(db_url) as conn:
        assert one(conn, "SELECT count(*) AS n FROM sources WHERE claimed_by IS NOT NULL")["n"] == 0
        runs = conn.execute("SELECT status FROM crawl_runs").fetchall()
        assert runs and all(r["status"] == "ok" for r in runs)
        # Where the server does not vacuum, the service vacuums the tables every store rewrites.
        assert ("haowatch vacuums trending_totals, trending_spans" in err) is not maintenance.autovacuum_on(conn)


def _count_articles(db_url: str) -> int:
    with connect(db_url) as conn:
        return one(conn, "SELECT count(*) AS n FROM articles")["n"]


def test_sigterm_during_a_slow_crawl_stops_cleanly(site: StandinSite, db_url: str) -> None:
    for n in range(3, 9):
        docid = f"K{n:07d}0514R9KQ"
        site.publish(TID_A, docid, f"文章{n}", [f"正文{n}"])
        site.script(f"/dy/article/{docid}.html", standin.slow(1.5))
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid) VALUES (%s)", (TID_A,))
    proc = start_service(site, db_url, free_port())
    try:
        wait_for(lambda: len(site.requests("/dy/article/")) >= 1, 60, "the crawl to start fetching")
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    assert time.monotonic() - started < 45
    with connect(db_url) as conn:
        assert one(conn, "SELECT count(*) AS n FROM sources WHERE claimed_by IS NOT NULL")["n"] == 0
        for row in conn.execute("SELECT docid, body_text FROM articles WHERE deleted_at IS NULL"):
            assert row["body_text"]  # whatever was stored is complete


def test_two_replicas_never_crawl_a_source_twice(site: StandinSite, db_url: str) -> None:
    tids = [f"T10000000001{n:02d}" for n in range(24)]
    for tid in tids:
        site.add_account(tid, f"账号{tid[-2:]}")
        site.script(f"/dy/media/{tid}.html", standin.slow(0.2))
    with connect(db_url) as conn:
        for tid in tids:
            conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 hour')", (tid,))
    extra = {"HAOWATCH_SOURCES_PER_CRAWL": "4"}
    replicas = [start_service(site, db_url, free_port(), **extra) for _ in range(2)]
    try:
        wait_for(lambda: len(site.requests("/dy/media/")) >= len(tids), 120, "every source checked")
        time.sleep(2)
    finally:
        for proc in replicas:
            proc.send_signal(signal.SIGTERM)
        errs = [proc.communicate(timeout=60)[1] for proc in replicas]
    assert all(proc.returncode == 0 for proc in replicas), [e[-2000:] for e in errs]
    per_source = Counter(site.requests("/dy/media/"))
    assert len(per_source) == len(tids)
    assert set(per_source.values()) == {1}, per_source.most_common(3)
    with connect(db_url) as conn:
        checked = one(conn, "SELECT count(*) AS n FROM sources WHERE last_checked_at IS NOT NULL")
        assert checked["n"] == len(tids)


class _FakeService:
    def __init__(self, healthy: bool) -> None:
        self.healthy = healthy
        self.counters: Counter[str] = Counter()


@pytest.mark.parametrize(("healthy", "use_real_db", "expected"), [(True, True, 200), (False, True, 503),
                                                                   (True, False, 503)])
def test_healthz_reflects_scheduler_and_database(db_url: str, healthy: bool, use_real_db: bool,
                                                 expected: int) -> None:
    url = db_url if use_real_db else "postgresql://nobody@127.0.0.1:1/none"
    port = free_port()
    server = HealthServer("127.0.0.1", port, url, _FakeService(healthy))
    server.start()
    try:
        status, _ = get(f"http://127.0.0.1:{port}/healthz")
        assert status == expected
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and ("haowatch_up 1" if use_real_db else "haowatch_up 0") in metrics
    finally:
        server.stop()


def test_run_refuses_a_taken_port(db_url: str, site: StandinSite) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        proc = start_service(site, db_url, port)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "HAOWATCH_HTTP_PORT" in err and "Traceback" not in err


def test_a_feed_going_silent_is_loud(site: StandinSite, db_url: str) -> None:
    silent, broken = "T1000000000007", "T1000000000008"
    site.add_account(silent, "沉默")  # lists nothing
    site.add_account(broken, "改版")
    site.script(f"/dy/media/{broken}.html", *[standin.body(b"<html><body><div>new layout</div></body></html>")] * 9)
    with connect(db_url) as conn:
        for tid in (silent, broken):
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (tid,))
    port = free_port()
    proc = start_service(site, db_url, port)
    try:
        def flagged() -> bool:
            with connect(db_url) as conn:
                rows = conn.execute("SELECT last_status FROM sources WHERE last_status IS NOT NULL").fetchall()
            return len(rows) == 2

        wait_for(flagged, 60, "both sources checked")
        time.sleep(1)
        _, metrics = get(f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert 'haowatch_sources_by_status{status="empty"} 1' in metrics
    assert 'haowatch_sources_by_status{status="parse_failed"} 1' in metrics
    assert f"SOURCE {silent} (沉默) IS EMPTY" in err
    assert f"SOURCE {broken} (?) IS PARSE_FAILED" in err  # never parsed, so its name is unknown


def test_the_service_revisits_recent_articles_and_catches_edits(site: StandinSite, db_url: str) -> None:
    docid = "K00000010514R9KQ"
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 day')", (TID_A,))
    port = free_port()
    proc = start_service(site, db_url, port)
    try:
        wait_for(lambda: _count_articles(db_url) == 1, 60, "the first crawl")
        site.edit(docid, title="改过的标题")
        with connect(db_url) as conn:
            revisit = one(conn, "SELECT next_revisit_at - first_seen_at AS age FROM articles")
            assert revisit["age"].total_seconds() == 3600  # first revisit an hour after first seen
            # An hour passes: the first revisit is due.
            conn.execute("UPDATE articles SET first_seen_at = first_seen_at - interval '1 hour',"
                         " next_revisit_at = now() - interval '1 second'")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    proc = start_service(site, db_url, port)  # the revisit job runs at start, then every 10 minutes
    try:
        def revised() -> bool:
            with connect(db_url) as conn:
                return one(conn, "SELECT revision FROM articles")["revision"] == 2

        wait_for(revised, 60, "the revisit to store a revision")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    with connect(db_url) as conn:
        article = one(conn, "SELECT title, next_revisit_at - first_seen_at AS age FROM articles")
        assert article["title"] == "改过的标题" and article["age"].total_seconds() == 6 * 3600
        assert one(conn, "SELECT title FROM article_revisions")["title"] == "文章一"
    assert proc.returncode == 0
