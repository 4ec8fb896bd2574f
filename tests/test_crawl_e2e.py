"""End-to-end crawls: the real ``haowatch`` command, real Scrapy, the stand-in site, real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow

from db.connection import connect
from tests import standin
from tests.helpers import HAOWATCH, run_cli
from tests.standin import StandinSite
from tests.standin_pages import render_account_page

TID_A, TID_B = "T1536566896022", "T1512041896308"
W_A = "W8207225059024484717"


def paragraphs(tag: str, n: int = 4) -> list[str]:
    return [f"{tag}：第{i}段，白俄罗斯与美国的合作引发热议，这是正文内容。" for i in range(1, n + 1)]


def docid(n: int) -> str:
    return f"K{n:07d}0514R9KQ"


@pytest.fixture
def site() -> Iterator[StandinSite]:
    with StandinSite() as s:
        s.add_account(TID_A, "史鹷的生活科普", W_A)
        s.add_account(TID_B, "北青网-北京青年报")
        yield s


def crawl_env(site: StandinSite) -> dict[str, str]:
    return {
        "HAOWATCH_SITE_URL": site.url,
        "HAOWATCH_LIST_API_URL": site.url,
        "HAOWATCH_DOWNLOAD_DELAY": "0",
        "HAOWATCH_RETRY_BACKOFF": "0.05",
        "HAOWATCH_CONCURRENCY": "4",
        "HAOWATCH_REQUEST_TIMEOUT": "10",
    }


def haowatch(site: StandinSite, db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    out = run_cli(*args, db_url=db_url, env=crawl_env(site), timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def rows(db_url: str, query: str, params: tuple[Any, ...] = ()) -> list[DictRow]:
    with connect(db_url) as conn:
        return conn.execute(query, params).fetchall()


def add_sources(db_url: str, *tids: str) -> None:
    with connect(db_url) as conn:
        for tid in tids:
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (tid,))


def test_first_crawl_stores_everything(site: StandinSite, db_url: str) -> None:
    for n in range(1, 4):
        site.publish(TID_A, docid(n), f"文章{n}", paragraphs(f"A{n}"), thumbnail=n != 2)
    site.list_video(TID_A, "VTKMFJJQ5", "一段视频")
    site.publish(TID_B, docid(10), "北青文章", paragraphs("B"))
    add_sources(db_url, TID_A, TID_B)

    out = haowatch(site, db_url, "crawl")
    assert out.stdout.strip().endswith("2 sources, 6 requests, 4 new, 0 updated, 0 deleted, 0 errors"), out.stdout

    articles = rows(db_url, "SELECT * FROM articles ORDER BY docid")
    assert [a["docid"] for a in articles] == [docid(1), docid(2), docid(3), docid(10)]
    first = articles[0]
    assert first["title"] == "文章1" and first["source_tid"] == TID_A
    assert first["body_text"] == "\n".join(paragraphs("A1"))
    assert "特别声明" not in first["body_text"] and "NetEase" not in first["body_text"]
    assert first["url"] == f"https://www.163.com/dy/article/{docid(1)}.html"
    assert first["published_at"] is not None and first["next_revisit_at"] is not None
    assert first["deleted_at"] is None and first["revision"] == 1
    links = rows(db_url, "SELECT block, count(*) AS n FROM article_links WHERE docid = %s GROUP BY block",
                 (docid(1),))
    blocks = {r["block"]: r["n"] for r in links}
    assert blocks.get("related", 0) > 0 and blocks.get("trending", 0) > 0
    videos = rows(db_url, "SELECT video_id, title FROM videos")
    assert videos == [{"video_id": "VTKMFJJQ5", "title": "一段视频"}]
    source = rows(db_url, "SELECT * FROM sources WHERE tid = %s", (TID_A,))[0]
    assert source["last_status"] == "ok" and source["consecutive_failures"] == 0
    assert source["wemedia_id"] == W_A and source["last_item_count"] == 4
    assert source["next_check_at"] > source["last_checked_at"]
    run = rows(db_url, "SELECT * FROM crawl_runs")[0]
    assert run["status"] == "ok" and run["new_articles"] == 4 and run["requests"] == 6
    assert run["finished_at"] is not None and set(run["sources"]) == {TID_A, TID_B}
    snaps = rows(db_url, "SELECT count(*) AS n FROM account_snapshots WHERE tid = %s", (TID_A,))
    assert snaps[0]["n"] == 1


def test_steady_state_is_one_request_per_account(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "文章1", paragraphs("A1"))
    site.publish(TID_B, docid(2), "文章2", paragraphs("B"))
    add_sources(db_url, TID_A, TID_B)
    haowatch(site, db_url, "crawl")
    site.clear_log()
    out = haowatch(site, db_url, "crawl")
    assert sorted(site.requests()) == sorted([f"/dy/media/{TID_A}.html", f"/dy/media/{TID_B}.html"])
    assert "2 requests, 0 new" in out.stdout


def test_new_article_is_the_only_one_fetched(site: StandinSite, db_url: str) -> None:
    for n in range(1, 4):
        site.publish(TID_A, docid(n), f"文章{n}", paragraphs(f"A{n}"))
    add_sources(db_url, TID_A)
    haowatch(site, db_url, "crawl")
    site.publish(TID_A, docid(4), "新文章", paragraphs("A4"))
    site.clear_log()
    out = haowatch(site, db_url, "crawl", TID_A)
    assert site.requests() == [f"/dy/media/{TID_A}.html", f"/dy/article/{docid(4)}.html"]
    assert "1 new" in out.stdout
    assert rows(db_url, "SELECT count(*) AS n FROM articles")[0]["n"] == 4


def test_requests_are_polite(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "文章1", paragraphs("A1"))
    add_sources(db_url, TID_A)
    haowatch(site, db_url, "crawl")
    for _, headers in site.log:
        assert "Mozilla/5.0" in headers["user-agent"] and "Scrapy" not in headers["user-agent"]
        assert headers["referer"] == "https://www.163.com/"
    assert not any(path.startswith("/robots.txt") for path in site.requests())


def test_edit_makes_a_revision_and_unchanged_adds_nothing(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "原标题", paragraphs("old"))
    add_sources(db_url, TID_A)
    haowatch(site, db_url, "crawl")

    out = haowatch(site, db_url, "refetch", docid(1))
    assert "0 new, 0 updated" in out.stdout
    assert rows(db_url, "SELECT count(*) AS n FROM article_revisions")[0]["n"] == 0

    site.edit(docid(1), title="新标题", paragraphs=paragraphs("new"))
    out = haowatch(site, db_url, "refetch", f"https://m.163.com/dy/article/{docid(1)}.html?f=x")
    assert "1 updated" in out.stdout
    article = rows(db_url, "SELECT * FROM articles")[0]
    assert article["title"] == "新标题" and article["revision"] == 2
    assert article["body_text"] == "\n".join(paragraphs("new")) and article["last_changed_at"] is not None
    revisions = rows(db_url, "SELECT * FROM article_revisions")
    assert len(revisions) == 1
    assert revisions[0]["title"] == "原标题" and revisions[0]["body_text"] == "\n".join(paragraphs("old"))
    assert revisions[0]["revision"] == 1


def test_deletion_sets_deleted_at(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "会被删", paragraphs("A1"))
    site.publish(TID_A, docid(2), "列出但已删", paragraphs("A2"))
    site.delete(docid(2))  # listed on the account page, but its page is already gone
    add_sources(db_url, TID_A)
    out = haowatch(site, db_url, "crawl")
    assert "1 new" in out.stdout and "1 deleted" in out.stdout
    gone = rows(db_url, "SELECT * FROM articles WHERE docid = %s", (docid(2),))[0]
    assert gone["deleted_at"] is not None and gone["body_text"] is None and gone["title"] == "列出但已删"

    site.delete(docid(1), unlist=True)
    out = haowatch(site, db_url, "refetch", docid(1))
    assert "1 deleted" in out.stdout
    first = rows(db_url, "SELECT * FROM articles WHERE docid = %s", (docid(1),))[0]
    assert first["deleted_at"] is not None
    assert first["body_text"] == "\n".join(paragraphs("A1"))  # what it said is kept
    live = rows(db_url, "SELECT docid FROM latest_articles")
    assert live == []


def test_content_reposted_under_another_docid_is_linked(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "原文", paragraphs("same"))
    add_sources(db_url, TID_A, TID_B)
    haowatch(site, db_url, "crawl")
    site.publish(TID_B, docid(2), "转载", paragraphs("same"))
    out = haowatch(site, db_url, "crawl")
    assert "0 new" in out.stdout
    dup = rows(db_url, "SELECT duplicate_of FROM articles WHERE docid = %s", (docid(2),))[0]
    assert dup["duplicate_of"] == docid(1)


def test_faults_are_retried_and_nothing_is_lost(site: StandinSite, db_url: str) -> None:
    for n in range(1, 7):
        site.publish(TID_A, docid(n), f"文章{n}", paragraphs(f"A{n}"))
    site.script(f"/dy/article/{docid(1)}.html", standin.status(503), standin.status(502))
    site.script(f"/dy/article/{docid(2)}.html", standin.status(429, Retry_After="1"))
    site.script(f"/dy/article/{docid(3)}.html", standin.truncate())
    site.script(f"/dy/article/{docid(4)}.html", standin.cut_html())
    site.script(f"/dy/article/{docid(5)}.html", standin.drop())
    site.script(f"/dy/media/{TID_A}.html", standin.status(500))
    add_sources(db_url, TID_A)
    out = haowatch(site, db_url, "crawl")
    assert "6 new" in out.stdout and "0 errors" in out.stdout, out.stdout
    stored = rows(db_url, "SELECT docid, body_text FROM articles ORDER BY docid")
    assert [(r["docid"], r["body_text"]) for r in stored] == [
        (docid(n), "\n".join(paragraphs(f"A{n}"))) for n in range(1, 7)
    ]
    assert len(site.requests(f"/dy/article/{docid(1)}.html")) == 3
    assert len(site.requests(f"/dy/article/{docid(2)}.html")) == 2
    stats = rows(db_url, "SELECT stats FROM crawl_runs")[0]["stats"]
    assert stats["haowatch/retry_wait_seconds"] >= 1.0  # the 429's Retry-After: 1 was honoured


def test_a_page_that_keeps_failing_is_retried_on_the_next_check(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "文章1", paragraphs("A1"))
    site.publish(TID_A, docid(2), "文章2", paragraphs("A2"))
    site.script(f"/dy/article/{docid(2)}.html", *[standin.status(503)] * 10)
    add_sources(db_url, TID_A)
    out = haowatch(site, db_url, "crawl")
    assert "1 new" in out.stdout and "1 errors" in out.stdout
    pending = rows(db_url, "SELECT fetch_failures, last_fetch_error FROM listed_items WHERE item_id = %s",
                   (docid(2),))[0]
    assert pending["fetch_failures"] == 1 and "503" in pending["last_fetch_error"]
    site.scripts.clear()
    out = haowatch(site, db_url, "crawl")
    assert "1 new" in out.stdout
    assert rows(db_url, "SELECT count(*) AS n FROM articles WHERE body_text IS NOT NULL")[0]["n"] == 2


def test_bad_account_pages_mark_the_source_and_others_go_on(site: StandinSite, db_url: str) -> None:
    site.publish(TID_B, docid(1), "文章1", paragraphs("B"))
    missing_tid, empty_tid, blocked_tid = "T1000000000001", "T1000000000002", "T1000000000003"
    site.add_account(empty_tid, "空账号")
    site.add_account(blocked_tid, "被拦")
    site.script(f"/dy/media/{blocked_tid}.html",
                *[standin.body("<html><body><p>访问过于频繁，请稍后再试</p></body></html>".encode())] * 3)
    add_sources(db_url, TID_B, missing_tid, empty_tid, blocked_tid)
    out = haowatch(site, db_url, "crawl")
    assert "1 new" in out.stdout
    status = {r["tid"]: r for r in rows(db_url, "SELECT * FROM sources")}
    assert status[TID_B]["last_status"] == "ok"
    assert status[missing_tid]["last_status"] == "not_found" and status[missing_tid]["consecutive_failures"] == 1
    assert status[empty_tid]["last_status"] == "empty"
    # a block is a block (issue 11), not a markup change: distinct from parse_failed
    assert status[blocked_tid]["last_status"] == "blocked"
    assert rows(db_url, "SELECT count(*) AS n FROM articles")[0]["n"] == 1
    # a failing source backs off: its next check is later than an interval away
    assert status[missing_tid]["next_check_at"] > status[missing_tid]["last_checked_at"]


def test_backfill_walks_the_list_api(site: StandinSite, db_url: str) -> None:
    for n in range(1, 15):
        site.publish(TID_A, docid(n), f"文章{n}", paragraphs(f"A{n}"))
    add_sources(db_url, TID_A)
    out = run_cli("backfill", TID_A, db_url=db_url, env=crawl_env(site))
    assert out.returncode == 2 and "W-id" in out.stderr
    with connect(db_url) as conn:
        conn.execute("UPDATE sources SET wemedia_id = %s", (W_A,))
    out = haowatch(site, db_url, "backfill", TID_A, "--pages", "5")
    assert "14 new" in out.stdout, out.stdout
    assert len(site.requests("/v2/article/list.do")) == 2  # page 2 is short: the last one
    assert rows(db_url, "SELECT count(*) AS n FROM articles")[0]["n"] == 14


def test_killed_crawl_then_new_crawl_leaves_every_article_once(site: StandinSite, db_url: str) -> None:
    total = 12
    for n in range(1, total + 1):
        site.publish(TID_A, docid(n), f"文章{n}", paragraphs(f"A{n}", 30))
        site.script(f"/dy/article/{docid(n)}.html", standin.slow(0.4))
    add_sources(db_url, TID_A)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(crawl_env(site), DATABASE_URL=db_url, HAOWATCH_CONCURRENCY="2", HAOWATCH_ENV_FILE="/nonexistent")
    proc = subprocess.Popen([HAOWATCH, "crawl"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = rows(db_url, "SELECT count(*) AS n FROM articles")[0]["n"]
        if stored >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored_before = rows(db_url, "SELECT count(*) AS n FROM articles")[0]["n"]
    assert 0 < stored_before < total
    for row in rows(db_url, "SELECT docid, body_text FROM articles"):
        n = int(row["docid"][1:8])
        assert row["body_text"] == "\n".join(paragraphs(f"A{n}", 30))  # complete, never half-written

    already = {r["docid"] for r in rows(db_url, "SELECT docid FROM articles")}
    site.clear_log()
    haowatch(site, db_url, "crawl")
    final = rows(db_url, "SELECT docid, body_text FROM articles ORDER BY docid")
    assert [r["docid"] for r in final] == [docid(n) for n in range(1, total + 1)]
    for row in final:
        n = int(row["docid"][1:8])
        assert row["body_text"] == "\n".join(paragraphs(f"A{n}", 30))
    # Exactly what the killed crawl had not stored is fetched: nothing stored is fetched again.
    fetched = sorted(path.rsplit("/", 1)[1].removesuffix(".html") for path in site.requests("/dy/article/"))
    assert fetched == sorted({docid(n) for n in range(1, total + 1)} - already)


def test_crawl_refuses_unknown_source(site: StandinSite, db_url: str) -> None:
    out = run_cli("crawl", "T9999999999999", db_url=db_url, env=crawl_env(site))
    assert out.returncode == 2 and "not a watched source" in out.stderr


def test_crawl_with_no_sources_is_quick_and_ok(site: StandinSite, db_url: str) -> None:
    out = haowatch(site, db_url, "crawl")
    assert "0 sources, 0 requests" in out.stdout


def test_store_is_atomic_when_the_database_refuses(db_url: str) -> None:
    """A failure in the middle of storing an article leaves no trace of it (one transaction)."""
    from datetime import UTC, datetime

    from db.articles import store_article
    from db.records import AccountFacts, ArticleRecord, LinkRecord

    page = ArticleRecord(
        docid=docid(1), url="u", title="t", published_at=None, ip_location=None,
        account=AccountFacts(tid=TID_A), body_paragraphs=["p"], body_text="p", body_html="<p>p</p>",
        links=[LinkRecord(block="related", position=1, url="x"), LinkRecord(block="bogus", position=2, url="y")],
    )
    with connect(db_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        store_article(conn, page, source_tid=TID_A, content_hash="h", fetched_at=datetime.now(UTC))
    assert rows(db_url, "SELECT count(*) AS n FROM articles")[0]["n"] == 0
    assert rows(db_url, "SELECT count(*) AS n FROM article_links")[0]["n"] == 0


def test_status_summarises_sources_and_crawls(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "文章1", paragraphs("A1"))
    add_sources(db_url, TID_A, "T1000000000001")
    haowatch(site, db_url, "crawl")
    out = haowatch(site, db_url, "status")
    assert "sources:  2 watched, 2 enabled, 0 paused" in out.stdout
    assert "last crawl: #1 crawl ok" in out.stdout and "1 new today" in out.stdout
    assert "T1000000000001" in out.stdout and "not_found" in out.stdout  # the failing one is named
    data = __import__("json").loads(haowatch(site, db_url, "status", "--json").stdout)
    assert data["sources"]["failing"] == 1 and data["articles"]["live"] == 1


def test_one_article_listed_in_many_url_forms_is_fetched_once(site: StandinSite, db_url: str) -> None:
    site.publish(TID_A, docid(1), "文章1", paragraphs("A1"))
    page = render_account_page(TID_A, "甲", [
        {"docid": docid(1), "title": "文章1", "time": "2026-01-22 10:00", "thumbnail": None},
    ])
    forms = [f"https://m.163.com/dy/article/{docid(1)}.html?f=post2020_dy_recommends",
             f"https://www.163.com/dy/article/{docid(1)}_pdya11y.html",
             f"https://c.m.163.com/news/a/{docid(1)}.html#offset=0"]
    canonical = f"https://www.163.com/dy/article/{docid(1)}.html"
    item = page[page.index('<li class="js-item'):page.index("</li>") + 5]
    extra = "".join(item.replace(canonical, form) for form in forms)
    site.script(f"/dy/media/{TID_A}.html", standin.body(page.replace(item, item + extra).encode()))
    add_sources(db_url, TID_A)
    out = haowatch(site, db_url, "crawl")
    assert "2 requests, 1 new" in out.stdout
    assert site.requests("/dy/article/") == [f"/dy/article/{docid(1)}.html"]
