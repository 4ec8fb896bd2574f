"""Kill tests of the continuous crawler: a killed worker, a killed replica, a killed crawl's articles.

The service runs with its defaults for leases and polling (only politeness is turned down for the
stand-in site), so the two-minute recovery measured here is the one users get.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.connection import connect
from tests import standin
from tests.helpers import HAOWATCH, one, run_cli
from tests.standin import StandinSite
from tests.test_service import free_port, wait_for

RECOVERY_SECONDS = 120
TIDS = [f"T10000000002{n:02d}" for n in range(4)]


def _start(site: StandinSite, db_url: str, **extra: str) -> subprocess.Popen[str]:
    """A replica in its own session, so the test can kill it with everything it started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": db_url, "HAOWATCH_ENV_FILE": "/nonexistent", "HAOWATCH_SITE_URL": site.url,
                "HAOWATCH_DOWNLOAD_DELAY": "0", "HAOWATCH_RETRY_BACKOFF": "0.05",
                "HAOWATCH_HTTP_PORT": str(free_port()), "HAOWATCH_CONCURRENCY": "4", **extra})
    return subprocess.Popen([HAOWATCH, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        for pid in (proc.pid, *_children(proc.pid)):
            os.kill(pid, signal.SIGKILL)
        return proc.communicate()[1]


def _claims(db_url: str) -> list[str]:
    with connect(db_url) as conn:
        return [r["claimed_by"] for r in conn.execute(
            "SELECT claimed_by FROM sources WHERE claimed_by IS NOT NULL ORDER BY tid").fetchall()]


def _checked_after(db_url: str, since: float) -> set[str]:
    with connect(db_url) as conn:
        rows = conn.execute("SELECT tid FROM sources WHERE last_checked_at >= to_timestamp(%s)", (since,)).fetchall()
    return {r["tid"] for r in rows}


@pytest.fixture
def site() -> Iterator[StandinSite]:
    with StandinSite() as s:
        for n, tid in enumerate(TIDS):
            s.add_account(tid, f"账号{n}")
            s.publish(tid, f"K{n + 1:07d}0514R9KQ", f"文章{n}", [f"第{n}篇的正文内容。"])
        yield s


def _add_sources(db_url: str) -> None:
    with connect(db_url) as conn:
        for tid in TIDS:
            conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 hour')", (tid,))


def test_a_killed_worker_is_restarted_and_its_sources_checked_within_two_minutes(site: StandinSite,
                                                                                  db_url: str) -> None:
    for tid in TIDS:  # the first check of every account hangs, so the worker holds its claims
        site.script(f"/dy/media/{tid}.html", standin.slow(25))
    _add_sources(db_url)
    proc = _start(site, db_url)
    try:
        wait_for(lambda: len(_claims(db_url)) == len(TIDS), 60, "the worker to claim every source")
        owner = _claims(db_url)[0]
        assert owner.endswith("/w1")
        workers = _children(proc.pid)
        assert len(workers) == 1
        killed_at = time.time()
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: _checked_after(db_url, killed_at) == set(TIDS), RECOVERY_SECONDS,
                 "every source checked after the worker was killed")
        recovered = time.time() - killed_at
        with connect(db_url) as conn:
            by = {r["last_checked_by"] for r in conn.execute("SELECT last_checked_by FROM sources").fetchall()}
            assert by == {owner.removesuffix("/w1") + "/w2"}  # the restarted worker did it
        assert recovered < RECOVERY_SECONDS

        def stored() -> int:
            with connect(db_url) as conn:
                return int(one(conn, "SELECT count(*) AS n FROM articles")["n"])

        wait_for(lambda: stored() == len(TIDS), 30, "the articles the checks found")
        assert proc.poll() is None  # the service itself never went down
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err[-3000:]
    assert "crawl worker exited with code" in err
    assert "Traceback" not in err


def test_a_killed_replica_s_sources_and_pending_articles_are_crawled_within_two_minutes(site: StandinSite,
                                                                                        db_url: str) -> None:
    # Replica A checks quickly but every article page hangs: A dies holding checks and articles.
    docids = [f"K{n + 1:07d}0514R9KQ" for n in range(len(TIDS))]
    for tid in TIDS[:2]:
        site.script(f"/dy/media/{tid}.html", standin.slow(25))
    for docid in docids[2:]:
        site.script(f"/dy/article/{docid}.html", standin.slow(25))
    _add_sources(db_url)
    replica_a = _start(site, db_url)
    try:
        def a_holds_work() -> bool:
            with connect(db_url) as conn:
                held = one(conn, "SELECT count(*) AS n FROM listed_items WHERE pending AND claimed_by IS NOT NULL")
            return len(_claims(db_url)) == 2 and held["n"] == 2

        wait_for(a_holds_work, 60, "replica A to hold two checks and two articles")
        a_owner = _claims(db_url)[0].split("/")[0]
        worker_a = _children(replica_a.pid)
        killed_at = time.time()
        for pid in (replica_a.pid, *worker_a):  # the replica and its worker, as an OOM kill or power loss
            os.kill(pid, signal.SIGKILL)
        replica_a.communicate()
    except BaseException:
        _stop(replica_a)
        raise
    assert not any(_alive(pid) for pid in worker_a)
    replica_b = _start(site, db_url)
    try:
        def recovered() -> bool:
            with connect(db_url) as conn:
                stored = one(conn, "SELECT count(*) AS n FROM articles WHERE body_text IS NOT NULL")["n"]
            return stored == len(TIDS) and set(TIDS[:2]) <= _checked_after(db_url, killed_at)

        wait_for(recovered, RECOVERY_SECONDS, "replica B to check A's sources and fetch A's pending articles")
        assert time.time() - killed_at < RECOVERY_SECONDS
        with connect(db_url) as conn:
            by = {r["last_checked_by"].split("/")[0] for r in
                  conn.execute("SELECT last_checked_by FROM sources WHERE tid = ANY(%s)", (TIDS[:2],)).fetchall()}
            assert by and a_owner not in by
            assert one(conn, "SELECT count(*) AS n FROM listed_items WHERE pending")["n"] == 0
            assert one(conn, "SELECT count(*) AS n FROM articles")["n"] == len(TIDS)  # each once
    finally:
        err = _stop(replica_b)
    assert replica_b.returncode == 0, err[-3000:]


def test_an_orphaned_worker_stops_and_lets_go_of_its_claims(site: StandinSite, db_url: str) -> None:
    for tid in TIDS:
        site.script(f"/dy/media/{tid}.html", standin.slow(40))
    _add_sources(db_url)
    proc = _start(site, db_url)
    try:
        wait_for(lambda: len(_claims(db_url)) == len(TIDS), 60, "the worker to claim every source")
        worker = _children(proc.pid)[0]
        os.kill(proc.pid, signal.SIGKILL)  # the service alone: its worker is orphaned
        proc.communicate()
        wait_for(lambda: not _alive(worker), 60, "the orphaned worker to stop")
        assert _claims(db_url) == []  # released on its way out, not left for the lease
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_rate_limited_page_delays_only_itself(site: StandinSite, db_url: str) -> None:
    slow_tid, busy_tid = TIDS[0], TIDS[1]
    docid = "K00000010514R9KQ"
    site.script(f"/dy/article/{docid}.html", *[standin.status(429, Retry_After="30")] * 3)
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 hour')", (slow_tid,))
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 second')", (busy_tid,))
    proc = _start(site, db_url, HAOWATCH_CONCURRENCY="1")
    try:
        wait_for(lambda: len(site.requests(f"/dy/article/{docid}.html")) >= 1, 60, "the rate-limited page")
        asked = time.monotonic()
        before = len(site.requests(f"/dy/media/{busy_tid}.html"))
        wait_for(lambda: len(site.requests(f"/dy/media/{busy_tid}.html")) >= before + 5, 25,
                 "other checks while the page waits out its Retry-After")
        assert time.monotonic() - asked < 30  # all of them before the page's own wait was over
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err[-3000:]


def test_a_worker_name_that_cannot_be_shown_is_refused_in_one_line(db_url: str) -> None:
    out = run_cli("worker", "--owner", "bad\x1b[2Jname", db_url=db_url)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "--owner" in out.stderr and "\x1b" not in out.stderr
