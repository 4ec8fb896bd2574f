"""Events outbox and notifications: written with each change, delivered at least once, never lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg.rows import DictRow

from db import events as events_db
from db.connection import connect
from scheduler.notify import Dispatcher, backoff_seconds, private_url
from tests import standin
from tests.helpers import HAOWATCH, one, run_cli
from tests.receiver import Receiver, free_port
from tests.standin import StandinSite

TID_A, TID_B = "T1536566896022", "T1512041896308"


def docid(n: int) -> str:
    return f"K{n:07d}0514R9KQ"


def paragraphs(tag: str, n: int = 3) -> list[str]:
    return [f"{tag}：第{i}段，白俄罗斯与美国的合作引发热议，这是正文内容。" for i in range(1, n + 1)]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def site() -> Iterator[StandinSite]:
    with StandinSite() as s:
        s.add_account(TID_A, "甲号")
        s.add_account(TID_B, "乙号")
        yield s


def crawl_env(site: StandinSite) -> dict[str, str]:
    return {"HAOWATCH_SITE_URL": site.url, "HAOWATCH_LIST_API_URL": site.url, "HAOWATCH_DOWNLOAD_DELAY": "0",
            "HAOWATCH_RETRY_BACKOFF": "0.05", "HAOWATCH_RETRY_TIMES": "1", "HAOWATCH_CONCURRENCY": "4",
            "HAOWATCH_REQUEST_TIMEOUT": "10"}


def haowatch(site: StandinSite, db_url: str, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    out = run_cli(*args, db_url=db_url, env=crawl_env(site), timeout=180)
    assert out.returncode == code, out.stderr[-3000:]
    return out


def all_events(db_url: str) -> list[DictRow]:
    with connect(db_url) as conn:
        return conn.execute("SELECT * FROM events ORDER BY id").fetchall()


def make_every_kind(site: StandinSite, db_url: str) -> None:
    """Through real crawls: new (A and B), edited, deleted, failing and recovered."""
    with connect(db_url) as conn:
        for tid in (TID_A, TID_B):
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (tid,))
    site.publish(TID_A, docid(1), "白俄罗斯原标题", paragraphs("甲一"))
    site.publish(TID_A, docid(2), "将被删除的文章", paragraphs("甲二"))
    site.publish(TID_B, docid(3), "乙的文章", paragraphs("乙"))
    haowatch(site, db_url, "crawl")
    edited = [*paragraphs("甲一")[:2], "甲一：第3段，合作已经改成了新的说法。"]
    site.edit(docid(1), title="白俄罗斯新标题", paragraphs=edited)
    site.delete(docid(2), unlist=True)
    haowatch(site, db_url, "refetch", docid(1), docid(2))
    site.script(f"/dy/media/{TID_B}.html", standin.status(404))
    failed = run_cli("crawl", TID_B, db_url=db_url, env=crawl_env(site), timeout=180)
    assert failed.returncode == 1 and "every source failed" in failed.stderr, failed.stderr[-2000:]
    haowatch(site, db_url, "crawl", TID_B)


def test_every_change_writes_its_event_in_the_same_transaction(site: StandinSite, db_url: str) -> None:
    make_every_kind(site, db_url)
    events = all_events(db_url)
    kinds = Counter(e["kind"] for e in events)
    assert kinds == {"new": 3, "edited": 1, "deleted": 1, "failing": 1, "recovered": 1}, kinds
    edited = next(e for e in events if e["kind"] == "edited")
    assert edited["docid"] == docid(1) and edited["title"] == "白俄罗斯新标题"
    assert edited["payload"]["from_revision"] == 1 and edited["payload"]["to_revision"] == 2
    assert edited["payload"]["old_title"] == "白俄罗斯原标题"
    failing = next(e for e in events if e["kind"] == "failing")
    assert failing["source_tid"] == TID_B and failing["payload"]["status"] == "not_found"
    # An unchanged refetch and an unchanged crawl write nothing.
    haowatch(site, db_url, "refetch", docid(1))
    haowatch(site, db_url, "crawl")
    assert len(all_events(db_url)) == len(events)


def test_a_rolled_back_change_leaves_no_event(conn: psycopg.Connection[DictRow]) -> None:
    conn.execute("INSERT INTO subscriptions (url) VALUES ('json://127.0.0.1:9/x')")
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute("INSERT INTO articles (docid, url, title, content_hash) VALUES (%s, 'u', 't', 'h')",
                     (docid(1),))
        conn.execute("INSERT INTO articles (docid, url) VALUES ('bad', 'u')")
    assert one(conn, "SELECT count(*) AS n FROM events")["n"] == 0
    assert one(conn, "SELECT count(*) AS n FROM deliveries")["n"] == 0


def dispatcher(db_url: str, **overrides: int) -> Dispatcher:
    options = {"max_attempts": 50, "retry_seconds": 1, "max_backoff_seconds": 2, "lease_seconds": 5, **overrides}
    return Dispatcher(db_url, max_attempts=options["max_attempts"], retry_seconds=options["retry_seconds"],
                      max_backoff_seconds=options["max_backoff_seconds"], lease_seconds=options["lease_seconds"])


def test_each_event_reaches_each_matching_subscription_exactly_once(site: StandinSite, db_url: str) -> None:
    with Receiver() as rx:
        urls = {
            "all": rx.url("/all"),
            "b-only": rx.url("/b"),
            "edits": rx.url("/edits"),
            "keyword": rx.url("/kw"),
        }
        # Subscriptions are plain rows: one inserted by SQL, the rest through the CLI.
        with connect(db_url) as conn:
            conn.execute("INSERT INTO subscriptions (url) VALUES (%s)", (urls["all"],))
        for args in (["--source", TID_B], ["--events", "edited,deleted"], ["--keyword", "原标题"]):
            key = {"--source": "b-only", "--events": "edits", "--keyword": "keyword"}[args[0]]
            out = run_cli("notify", "add", urls[key], *args, db_url=db_url)
            assert out.returncode == 0, out.stderr
        d = dispatcher(db_url)
        d.start()
        try:
            make_every_kind(site, db_url)
            events = all_events(db_url)
            wait_for(lambda: len(rx.event_ids("/all")) >= len(events), 30, "every event at /all")
            time.sleep(1.5)  # anything sent twice would arrive by now
        finally:
            d.stop()
    by_kind = {e["id"]: e["kind"] for e in events}
    assert sorted(rx.event_ids("/all")) == sorted(by_kind)  # exactly once each
    b_events = {e["id"] for e in events if e["source_tid"] == TID_B}
    assert sorted(rx.event_ids("/b")) == sorted(b_events) and len(b_events) == 3  # new, failing, recovered
    assert sorted(by_kind[i] for i in rx.event_ids("/edits")) == ["deleted", "edited"]
    kw = [by_kind[i] for i in rx.event_ids("/kw")]
    assert sorted(kw) == ["edited", "new"], kw  # 原标题: docid(1) when new, and its edit (old title)
    edited_doc = next(e for e in rx.events("/all") if e["kind"] == "edited")
    assert "{+" in edited_doc["diff"] and "改成了" in edited_doc["diff"], edited_doc["diff"]
    assert edited_doc["from_revision"] == 1 and edited_doc["to_revision"] == 2
    assert all(h.get("x-haowatch-event-id") for h in rx.headers)
    with connect(db_url) as conn:
        assert events_db.delivery_counts(conn) == {"pending": 0, "delivered": len(rx.received), "dead": 0}


def test_a_receiver_down_for_a_while_gets_everything_when_it_returns(conn: psycopg.Connection[DictRow],
                                                                      db_url: str) -> None:
    rx = Receiver()  # not started: connections are refused
    conn.execute("INSERT INTO subscriptions (url) VALUES (%s)", (rx.url(),))
    d = dispatcher(db_url)
    d.start()
    try:
        for n in range(1, 6):
            conn.execute("INSERT INTO articles (docid, url, title, content_hash, body_text)"
                         " VALUES (%s, %s, %s, %s, %s)",
                         (docid(n), f"https://www.163.com/dy/article/{docid(n)}.html", f"标题{n}", f"h{n}", "正文"))
        wait_for(lambda: one(conn, "SELECT min(attempts) AS n FROM deliveries")["n"] >= 3, 30,
                 "several failed attempts")
        failed = conn.execute("SELECT last_error, delivered_at FROM deliveries").fetchall()
        assert all(r["delivered_at"] is None and r["last_error"] for r in failed)
        rx.start()
        wait_for(lambda: len(set(rx.event_ids())) == 5, 30, "every event after the receiver returned")
    finally:
        d.stop()
        rx.stop()
    assert Counter(rx.event_ids()).most_common(1)[0][1] == 1


def test_dead_letter_after_the_last_attempt(conn: psycopg.Connection[DictRow], db_url: str) -> None:
    conn.execute("INSERT INTO subscriptions (url) VALUES (%s)", (Receiver().url(),))
    conn.execute("INSERT INTO articles (docid, url, title, content_hash) VALUES (%s, 'u', 't', 'h')", (docid(1),))
    d = dispatcher(db_url, max_attempts=2)
    d.start()
    try:
        wait_for(lambda: one(conn, "SELECT dead_at FROM deliveries")["dead_at"] is not None, 30,
                 "the delivery to be given up")
    finally:
        d.stop()
    row = one(conn, "SELECT attempts, delivered_at FROM deliveries")
    assert row["attempts"] == 2 and row["delivered_at"] is None
    assert [backoff_seconds(n, 30, 3600) for n in (1, 2, 3, 8, 50)] == [30, 60, 120, 3600, 3600]


def start_service(db_url: str, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(DATABASE_URL=db_url, HAOWATCH_ENV_FILE="/nonexistent", HAOWATCH_SITE_URL="http://127.0.0.1:9",
               HAOWATCH_HTTP_PORT=str(free_port()), HAOWATCH_NOTIFY_RETRY_SECONDS="1",
               HAOWATCH_NOTIFY_MAX_BACKOFF_SECONDS="2", HAOWATCH_NOTIFY_LEASE_SECONDS="3", **extra)
    return subprocess.Popen([HAOWATCH, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_service_killed_mid_delivery_loses_nothing(conn: psycopg.Connection[DictRow], db_url: str) -> None:
    with Receiver() as rx:
        conn.execute("INSERT INTO subscriptions (url) VALUES (%s)", (rx.url(),))
        for n in range(1, 4):
            conn.execute("INSERT INTO articles (docid, url, title, content_hash) VALUES (%s, 'u', %s, %s)",
                         (docid(n), f"标题{n}", f"h{n}"))
        rx.hang_seconds = 30  # the first post is received but never answered
        proc = start_service(db_url)
        try:
            wait_for(lambda: one(conn, "SELECT count(*) AS n FROM deliveries WHERE claimed_until > now()")["n"] > 0,
                     60, "a delivery in flight")
            time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        rx.hang_seconds = 0
        proc = start_service(db_url)
        try:
            wait_for(lambda: len(set(rx.event_ids())) >= 3, 60, "every event after the restart")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    ids = {e["id"] for e in conn.execute("SELECT id FROM events").fetchall()}
    assert set(rx.event_ids()) == ids
    pending = one(conn, "SELECT count(*) AS n FROM deliveries WHERE delivered_at IS NULL")["n"]
    assert pending == 0


def test_notify_cli_hides_secrets_and_refuses_bad_input(db_url: str) -> None:
    secret_url = "tgram://123456789:AAHsecretTOKENvalue/987654"
    out = run_cli("notify", "add", secret_url, "--events", "new,failing", db_url=db_url)
    assert out.returncode == 0, out.stderr
    assert "AAHsecretTOKENvalue" not in out.stdout
    out = run_cli("notify", "add", "json://user:hunter2@127.0.0.1:9/x", "--keyword", "疫苗", db_url=db_url)
    assert out.returncode == 0 and "hunter2" not in out.stdout
    listing = run_cli("notify", "list", db_url=db_url)
    assert listing.returncode == 0
    assert "AAHsecretTOKENvalue" not in listing.stdout and "hunter2" not in listing.stdout
    assert "new,failing" in listing.stdout and "疫苗" in listing.stdout
    as_json = json.loads(run_cli("notify", "list", "--json", db_url=db_url).stdout)
    assert [s["id"] for s in as_json] == [1, 2] and "hunter2" not in json.dumps(as_json)
    assert "hunter2" not in private_url("json://user:hunter2@127.0.0.1:9/x")

    for args, needle in (
        (["notify", "add", "nonsense://x"], "Apprise"),
        (["notify", "add", "json://127.0.0.1/x", "--events", "new,bogus"], "bogus"),
        (["notify", "add", "json://127.0.0.1/x", "--source", "T123"], "T123"),
        (["notify", "remove", "99"], "no subscription 99"),
        (["notify", "remove", "abc"], "not a subscription id"),
        (["notify", "test", "42"], "no subscription 42"),
    ):
        out = run_cli(*args, db_url=db_url)
        assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
    assert run_cli("notify", "remove", "1", db_url=db_url).returncode == 0
    assert [s["id"] for s in json.loads(run_cli("notify", "list", "--json", db_url=db_url).stdout)] == [2]


def test_notify_test_sends_now_and_reports_failure(db_url: str) -> None:
    with Receiver() as rx:
        assert run_cli("notify", "add", rx.url(), db_url=db_url).returncode == 0
        out = run_cli("notify", "test", "1", db_url=db_url)
        assert out.returncode == 0, out.stderr
        assert "delivered" in out.stdout
        assert [e["kind"] for e in rx.events()] == ["test"]
    out = run_cli("notify", "test", "1", db_url=db_url)  # receiver gone
    assert out.returncode == 1 and "failed" in out.stderr and "Traceback" not in out.stderr
