"""Scheduling logic against real PostgreSQL, without sleeping: trigger math, claims and leases, backoff."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import DictRow

from crawler.middlewares import backoff_delay, retry_after_seconds
from db import queue as queue_db
from db import sources as sources_db
from db.articles import next_revisit
from db.connection import connect
from tests.helpers import one

TIDS = [f"T10000000000{n:02d}" for n in range(40)]


def _add(conn: psycopg.Connection[DictRow], *tids: str, interval: str = "30 minutes") -> None:
    for tid in tids:
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, %s::interval)", (tid, interval))


def _source(conn: psycopg.Connection[DictRow], tid: str) -> DictRow:
    return one(conn, "SELECT *, next_check_at - last_checked_at AS gap FROM sources WHERE tid = %s", (tid,))


def test_success_schedules_one_interval_ahead_with_small_jitter(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn, TIDS[0])
    sources_db.record_check(conn, TIDS[0], ok=True, status="ok", error=None, item_count=10, max_backoff_seconds=21600)
    row = _source(conn, TIDS[0])
    assert timedelta(minutes=30) <= row["gap"] <= timedelta(minutes=30 * 1.05)
    assert row["consecutive_failures"] == 0 and row["last_success_at"] is not None


def test_failures_back_off_doubling_and_capped_then_reset(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn, TIDS[0], interval="10 minutes")
    gaps = []
    for _ in range(8):
        sources_db.record_check(conn, TIDS[0], ok=False, status="http_error", error="HTTP 503", item_count=None,
                                max_backoff_seconds=3600)
        gaps.append(_source(conn, TIDS[0])["gap"])
    minutes = [g.total_seconds() / 60 for g in gaps]
    assert 10 <= minutes[0] <= 10.5 and 20 <= minutes[1] <= 21 and 40 <= minutes[2] <= 42
    assert all(55 <= m <= 63 for m in minutes[3:])  # capped at an hour (+ jitter)
    assert _source(conn, TIDS[0])["consecutive_failures"] == 8
    sources_db.record_check(conn, TIDS[0], ok=True, status="ok", error=None, item_count=3, max_backoff_seconds=3600)
    row = _source(conn, TIDS[0])
    assert row["consecutive_failures"] == 0 and row["gap"] <= timedelta(minutes=10.5)
    assert row["last_error"] is None


def _claim(conn: psycopg.Connection[DictRow], owner: str, limit: int = 10) -> list[str]:
    return sorted(s.tid for s in queue_db.claim_sources(conn, owner, limit, 600))


def test_claim_takes_only_due_enabled_unclaimed_sources(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn, *TIDS[:4])
    conn.execute("UPDATE sources SET enabled = false WHERE tid = %s", (TIDS[1],))
    conn.execute("UPDATE sources SET next_check_at = now() + interval '1 hour' WHERE tid = %s", (TIDS[2],))
    assert _claim(conn, "a") == [TIDS[0], TIDS[3]]
    assert _claim(conn, "b") == []  # claimed by a, lease running


def test_expired_lease_is_claimable_again(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn, TIDS[0])
    assert _claim(conn, "dead-replica") == [TIDS[0]]
    conn.execute("UPDATE sources SET claimed_until = now() - interval '1 second'")
    assert _claim(conn, "b") == [TIDS[0]]
    assert _source(conn, TIDS[0])["claimed_by"] == "b"


def test_concurrent_claims_are_disjoint(db_url: str) -> None:
    with connect(db_url) as conn:
        _add(conn, *TIDS)

    def claim(owner: str) -> list[str]:
        taken: list[str] = []
        with connect(db_url) as conn:
            while batch := _claim(conn, owner, 3):
                taken.extend(batch)
        return taken

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(claim, ["r1", "r2", "r3", "r4"]))
    everything = [t for r in results for t in r]
    assert sorted(everything) == sorted(TIDS)  # each source claimed exactly once


def test_a_check_that_never_finished_is_retried_later_not_at_once(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn, TIDS[0], TIDS[1])
    claimed = _claim(conn, "me")
    sources_db.record_check(conn, TIDS[1], ok=True, status="ok", error=None, item_count=1, max_backoff_seconds=60,
                            checked_by="me")
    # The worker gives up the checks that never finished; the finished one's claim ended with it.
    queue_db.give_up_sources(conn, "me", claimed, "check did not finish", retry_seconds=300)
    crashed, checked = _source(conn, TIDS[0]), _source(conn, TIDS[1])
    assert crashed["claimed_by"] is None and crashed["last_status"] == "error"
    assert crashed["consecutive_failures"] == 1
    assert one(conn, "SELECT next_check_at > now() + interval '4 minutes' AS later FROM sources WHERE tid = %s",
                        (TIDS[0],))["later"]
    assert checked["last_status"] == "ok" and checked["consecutive_failures"] == 0


def test_release_only_touches_own_claims(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn, TIDS[0])
    _claim(conn, "a")
    queue_db.release_owner(conn, "b")
    queue_db.give_up_sources(conn, "b", [TIDS[0]], "check did not finish", retry_seconds=300)
    assert _source(conn, TIDS[0])["claimed_by"] == "a"


def test_paused_and_retimed_sources_are_honoured(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn, TIDS[0])
    sources_db.set_enabled(conn, TIDS[0], False)
    assert _claim(conn, "a") == []
    sources_db.set_enabled(conn, TIDS[0], True)
    sources_db.record_check(conn, TIDS[0], ok=True, status="ok", error=None, item_count=1, max_backoff_seconds=60)
    assert _claim(conn, "a") == []
    sources_db.set_interval(conn, TIDS[0], 1)  # 1s: due again at once
    conn.execute("UPDATE sources SET last_checked_at = now() - interval '2 seconds'")
    sources_db.set_interval(conn, TIDS[0], 1)
    assert _claim(conn, "a") == [TIDS[0]]


def test_sources_change_notifies_listeners(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener, connect(db_url) as conn:
        listener.execute("LISTEN haowatch_sources")
        _add(conn, TIDS[0])
        notes = list(listener.notifies(timeout=5, stop_after=1))
        assert notes and notes[0].payload == TIDS[0]


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 10])
def test_backoff_delay_grows_and_is_capped(attempt: int) -> None:
    import random

    rng = random.Random(1)
    delay = backoff_delay(attempt, 2.0, 60.0, rng)
    assert min(60.0, 2.0 * 2**attempt) / 2 <= delay <= min(60.0, 2.0 * 2**attempt)


def test_retry_after_parsing() -> None:
    from datetime import UTC, datetime

    assert retry_after_seconds(b"120") == 120
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds(b"soon") is None and retry_after_seconds(None) is None


def test_revisit_policy() -> None:
    from datetime import UTC, datetime

    first = datetime(2026, 1, 1, tzinfo=UTC)
    ages = [3600, 6 * 3600, 24 * 3600]
    assert next_revisit(first, first, ages) == first + timedelta(hours=1)
    assert next_revisit(first, first + timedelta(hours=1, minutes=1), ages) == first + timedelta(hours=6)
    assert next_revisit(first, first + timedelta(hours=7), ages) == first + timedelta(hours=24)
    assert next_revisit(first, first + timedelta(hours=25), ages) is None


def test_jobs_never_overlap_and_a_restart_does_not_replay_a_backlog() -> None:
    from scheduler.config import load_settings
    from scheduler.service import Service

    service = Service(load_settings({"HAOWATCH_ENV_FILE": "/nonexistent", "HAOWATCH_TICK_SECONDS": "30"}),
                      "postgresql:///unused")
    defaults = service.scheduler._job_defaults
    assert defaults["coalesce"] is True and defaults["max_instances"] == 1
    assert defaults["misfire_grace_time"] == 30
