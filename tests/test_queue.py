"""The worker's queue in SQL: claims, leases, pending articles, releases (db/queue.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from psycopg.rows import DictRow

from db import articles as articles_db
from db import queue as queue_db
from db import sources as sources_db
from db.records import ListedRecord
from tests.helpers import one

TIDS = [f"T10000000003{n:02d}" for n in range(6)]
NOW = datetime(2026, 1, 22, 12, 0, tzinfo=UTC)


def _listed(docid: str) -> ListedRecord:
    return ListedRecord(item_type="article", id=docid, url=f"https://www.163.com/dy/article/{docid}.html",
                        title="标题", published_at=None, thumbnail=None)


def _add(conn: psycopg.Connection[DictRow]) -> None:
    for tid in TIDS:
        sources_db.add_source(conn, tid, 1800)


def test_two_workers_claim_disjoint_sources_and_a_lapsed_lease_is_taken_again(
        conn: psycopg.Connection[DictRow]) -> None:
    _add(conn)
    first = queue_db.claim_sources(conn, "r1/w1", 4, 60)
    second = queue_db.claim_sources(conn, "r2/w1", 4, 60)
    assert len(first) == 4 and len(second) == 2
    assert not {s.tid for s in first} & {s.tid for s in second}
    assert queue_db.claim_sources(conn, "r3/w1", 4, 60) == []
    conn.execute("UPDATE sources SET claimed_until = now() - interval '1 second' WHERE claimed_by = 'r1/w1'")
    assert {s.tid for s in queue_db.claim_sources(conn, "r3/w1", 10, 60)} == {s.tid for s in first}


def test_a_recorded_check_ends_the_claim_and_schedules_the_next_one(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn)
    [source] = queue_db.claim_sources(conn, "r1/w1", 1, 60)
    sources_db.record_check(conn, source.tid, ok=True, status="ok", error=None, item_count=3,
                            max_backoff_seconds=3600, checked_by="r1/w1")
    row = one(conn, "SELECT claimed_by, last_checked_by, next_check_at > now() + interval '29 minutes' AS later"
                    " FROM sources WHERE tid = %s", (source.tid,))
    assert row == {"claimed_by": None, "last_checked_by": "r1/w1", "later": True}
    assert [c.ok for c in queue_db.checks_by(conn, "r1/", NOW)] == [True]
    assert queue_db.checks_by(conn, "r2/", NOW) == []


def test_releasing_a_dead_worker_keeps_its_sources_due_and_its_articles_free(
        conn: psycopg.Connection[DictRow]) -> None:
    _add(conn)
    claimed = queue_db.claim_sources(conn, "r1/w1", 2, 60)
    before = {r["tid"]: r["next_check_at"] for r in conn.execute("SELECT tid, next_check_at FROM sources")}
    articles_db.record_listing(conn, TIDS[0], [_listed("K00000010514R9KQ")], NOW, claimed_by="r1/w1")
    assert queue_db.claim_pending_articles(conn, "r2/w1", 10, 60, 8) == []  # leased to r1/w1
    assert queue_db.release_owner(conn, "r1/w1") == 3
    after = {r["tid"]: r["next_check_at"] for r in conn.execute("SELECT tid, next_check_at FROM sources")}
    assert after == before  # not pushed back: due as before, for the next claim
    assert {s.tid for s in queue_db.claim_sources(conn, "r2/w1", 10, 60)} >= {s.tid for s in claimed}
    assert [a.docid for a in queue_db.claim_pending_articles(conn, "r2/w1", 10, 60, 8)] == ["K00000010514R9KQ"]


def test_a_pending_article_leaves_the_queue_when_stored_gone_or_given_up(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn)
    docids = ["K00000010514R9KQ", "K00000020514R9KQ", "K00000030514R9KQ"]
    articles_db.record_listing(conn, TIDS[0], [_listed(d) for d in docids], NOW, lease_seconds=1)
    conn.execute("UPDATE listed_items SET fetch_after = now() - interval '1 second'")
    assert {a.docid for a in queue_db.claim_pending_articles(conn, "w", 10, 60, 8)} == set(docids)
    articles_db.mark_gone(conn, docids[0], source_tid=TIDS[0], url="u", title=None, seen_at=NOW)
    for _ in range(2):
        articles_db.record_fetch_failure(conn, docids[1], "HTTP 500", max_failures=2, retry_seconds=0)
    articles_db.record_fetch_failure(conn, docids[2], "HTTP 500", max_failures=2, retry_seconds=0)
    pending = {r["item_id"]: r for r in conn.execute("SELECT item_id, pending, claimed_by FROM listed_items")}
    assert [pending[d]["pending"] for d in docids] == [False, False, True]
    assert pending[docids[2]]["claimed_by"] is None  # a failure ends the claim
    assert [a.docid for a in queue_db.claim_pending_articles(conn, "w", 10, 60, 2)] == [docids[2]]


def test_a_check_fetches_only_what_no_other_worker_holds(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn)
    held, free, new = "K00000010514R9KQ", "K00000020514R9KQ", "K00000030514R9KQ"
    articles_db.record_listing(conn, TIDS[0], [_listed(held), _listed(free)], NOW, claimed_by="other/w1")
    conn.execute("UPDATE listed_items SET fetch_after = now() - interval '1 second' WHERE item_id = %s", (free,))
    assert queue_db.claim_listed(conn, "me/w1", [new, held, free], 60) == [new, free]
    assert one(conn, "SELECT claimed_by FROM listed_items WHERE item_id = %s", (free,))["claimed_by"] == "me/w1"


def test_the_worker_knows_how_long_to_sleep(conn: psycopg.Connection[DictRow]) -> None:
    assert queue_db.seconds_until_due(conn, 8) is None
    sources_db.add_source(conn, TIDS[0], 1800)
    assert queue_db.seconds_until_due(conn, 8) == 0.0
    conn.execute("UPDATE sources SET next_check_at = now() + interval '90 seconds'")
    wait = queue_db.seconds_until_due(conn, 8)
    assert wait is not None and 80 < wait <= 90


def test_a_revisit_taken_is_put_off_so_a_failing_one_does_not_loop(conn: psycopg.Connection[DictRow]) -> None:
    conn.execute("INSERT INTO articles (docid, url, title, first_seen_at, last_fetched_at, next_revisit_at)"
                 " VALUES ('K00000010514R9KQ', 'u', 't', now(), now(), now() - interval '1 minute')")
    assert [a.docid for a in queue_db.claim_revisits(conn, 10, 1800)] == ["K00000010514R9KQ"]
    assert queue_db.claim_revisits(conn, 10, 1800) == []
    row = one(conn, "SELECT next_revisit_at > now() + interval '29 minutes' AS later FROM articles")
    assert row["later"] is True


def test_heartbeat_renews_only_the_owner_s_claims(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn)
    mine = [s.tid for s in queue_db.claim_sources(conn, "me/w1", 2, 10)]
    theirs = [s.tid for s in queue_db.claim_sources(conn, "other/w1", 2, 10)]
    queue_db.renew(conn, "me/w1", mine + theirs, [], 600)
    rows = {r["tid"]: r["long"] for r in conn.execute(
        "SELECT tid, claimed_until > now() + interval '5 minutes' AS long FROM sources WHERE claimed_by IS NOT NULL")}
    assert all(rows[t] for t in mine) and not any(rows[t] for t in theirs)


def test_blocked_fetches_wait_but_never_give_an_article_up(conn: psycopg.Connection[DictRow]) -> None:
    _add(conn)
    articles_db.record_listing(conn, TIDS[0], [_listed("K00000010514R9KQ")], NOW)
    for _ in range(10):
        articles_db.record_fetch_failure(conn, "K00000010514R9KQ", "blocked: captcha", max_failures=2,
                                         retry_seconds=0, counted=False)
    row = one(conn, "SELECT pending, fetch_failures, last_fetch_error FROM listed_items")
    assert row == {"pending": True, "fetch_failures": 0, "last_fetch_error": "blocked: captcha"}
    assert [a.docid for a in queue_db.claim_pending_articles(conn, "w", 10, 60, 2)] == ["K00000010514R9KQ"]
