"""Hostile answers (issue 9): foreign content is never stored, no answer is too big to refuse,
and no server can hold a crawl hostage with ``Retry-After``.

Real ``haowatch crawl`` processes against stand-in sites on loopback: the NetEase stand-in and a
second, foreign one (another address, or another port of the same address).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from db.connection import connect
from tests import standin
from tests.helpers import run_cli
from tests.standin import StandinSite
from tests.test_crawl_e2e import TID_A, W_A, add_sources, crawl_env, docid, paragraphs, rows

ARTICLE = docid(1)
PATH = f"/dy/article/{ARTICLE}.html"


@pytest.fixture
def site() -> Iterator[StandinSite]:
    with StandinSite() as s:
        s.add_account(TID_A, "史鹷的生活科普")
        s.publish(TID_A, ARTICLE, "真正的文章", paragraphs("真"))
        yield s


@pytest.fixture(params=["127.0.0.2", "127.0.0.1"], ids=["other-address", "other-port"])
def foreign(request: pytest.FixtureRequest) -> Iterator[StandinSite]:
    """Another site carrying a page under the same docid: its content must never be stored."""
    with StandinSite(host=request.param) as s:
        s.add_account(TID_A, "冒名顶替")
        s.publish(TID_A, ARTICLE, "外站的文章", paragraphs("假"))
        yield s


def crawl(site: StandinSite, db_url: str, **env: str):  # type: ignore[no-untyped-def]
    out = run_cli("crawl", db_url=db_url, env={**crawl_env(site), **env}, timeout=240)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return out


def last_stats(db_url: str) -> dict[str, Any]:
    return rows(db_url, "SELECT stats, errors FROM crawl_runs ORDER BY id DESC LIMIT 1")[0]


# --- off-site ----------------------------------------------------------------------------------


def test_a_redirect_to_another_host_is_refused_as_off_site_and_never_stored(site: StandinSite, foreign: StandinSite,
                                                                            db_url: str) -> None:
    site.script(PATH, standin.redirect(foreign.url + PATH))
    add_sources(db_url, TID_A)
    crawl(site, db_url)
    assert rows(db_url, "SELECT docid FROM articles") == []
    assert foreign.requests() == []  # refused before anything was fetched from there
    listed = rows(db_url, "SELECT last_fetch_error FROM listed_items WHERE item_id = %s", (ARTICLE,))
    assert "unexpected: off-site" in listed[0]["last_fetch_error"]
    run = last_stats(db_url)
    assert run["stats"]["haowatch/offsite_refused"] == 1 and run["errors"] >= 1
    # Still pending: the next check fetches the real page.
    crawl(site, db_url)
    stored = rows(db_url, "SELECT title, url, fetched_url FROM articles")
    assert stored == [{"title": "真正的文章", "url": f"https://www.163.com/dy/article/{ARTICLE}.html",
                       "fetched_url": site.url + PATH}]


def test_an_account_page_redirected_elsewhere_gives_no_listing(site: StandinSite, foreign: StandinSite,
                                                               db_url: str) -> None:
    site.script(f"/dy/media/{TID_A}.html", standin.redirect(f"{foreign.url}/dy/media/{TID_A}.html", 301))
    add_sources(db_url, TID_A)
    crawl(site, db_url)
    assert rows(db_url, "SELECT item_id FROM listed_items") == []
    assert rows(db_url, "SELECT docid FROM articles") == []
    source = rows(db_url, "SELECT name, last_status, last_error FROM sources")[0]
    assert source["name"] is None and "off-site" in source["last_error"]
    assert last_stats(db_url)["stats"]["haowatch/offsite_refused"] == 1


def test_a_redirect_chain_leaving_the_site_on_a_later_hop_is_refused(site: StandinSite, foreign: StandinSite,
                                                                     db_url: str) -> None:
    site.script(PATH, standin.redirect("/hop1"))
    site.script("/hop1", standin.redirect(foreign.url + PATH, 307))
    add_sources(db_url, TID_A)
    crawl(site, db_url)
    assert rows(db_url, "SELECT docid FROM articles") == [] and foreign.requests() == []


def test_allowed_hosts_are_followed_and_the_fetched_url_recorded(site: StandinSite, db_url: str) -> None:
    with StandinSite(host="127.0.0.3") as hop:  # stands for NetEase's own m.163.com
        hop.add_account(TID_A, "史鹷的生活科普")
        hop.publish(TID_A, ARTICLE, "移动版的文章", paragraphs("移"))
        site.script(PATH, standin.redirect(hop.url + PATH))
        add_sources(db_url, TID_A)
        crawl(site, db_url, HAOWATCH_ALLOWED_HOSTS=f"www.163.com,{hop.url.removeprefix('http://')}")
        stored = rows(db_url, "SELECT title, url, fetched_url FROM articles")
    assert stored == [{"title": "移动版的文章", "url": f"https://www.163.com/dy/article/{ARTICLE}.html",
                       "fetched_url": hop.url + PATH}]


def test_meta_refresh_is_not_followed(site: StandinSite, foreign: StandinSite, db_url: str) -> None:
    for _ in range(4):
        site.script(PATH, standin.meta_refresh(foreign.url + PATH))
    add_sources(db_url, TID_A)
    crawl(site, db_url)
    assert foreign.requests() == []
    assert rows(db_url, "SELECT docid FROM articles") == []
    assert rows(db_url, "SELECT last_fetch_error FROM listed_items")[0]["last_fetch_error"]


@pytest.mark.parametrize("hops", [[PATH], [PATH, "/b"], [PATH, "/b", "/c"]],
                         ids=["to-itself", "two-hop", "three-hop"])
def test_a_redirect_loop_is_counted_as_an_error(site: StandinSite, db_url: str, hops: list[str]) -> None:
    for _ in range(3):
        for n, path in enumerate(hops):
            site.script(path, standin.redirect(hops[(n + 1) % len(hops)]))
    add_sources(db_url, TID_A)
    crawl(site, db_url)
    run = last_stats(db_url)
    assert run["stats"]["haowatch/redirect_loops"] == 1 and run["errors"] >= 1
    assert "redirect loop" in rows(db_url, "SELECT last_fetch_error FROM listed_items")[0]["last_fetch_error"]
    assert rows(db_url, "SELECT docid FROM articles") == []


# --- size caps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [standin.huge(20 * 1024 * 1024), standin.huge(20 * 1024 * 1024, announce=False),
     standin.gzip_bomb(200 * 1024 * 1024), standin.endless_headers()],
    ids=["huge-announced", "huge-streamed", "gzip-bomb", "endless-headers"],
)
def test_an_oversized_answer_is_refused_once_not_retried_and_stays_pending(site: StandinSite, db_url: str,
                                                                          behaviour: standin.Behaviour) -> None:
    site.script(PATH, behaviour)
    add_sources(db_url, TID_A)
    crawl(site, db_url, HAOWATCH_MAX_RESPONSE_SIZE="1MB")
    assert site.requests(PATH) == [PATH]  # fetched once: a refused answer is not retried
    assert rows(db_url, "SELECT docid FROM articles") == []
    run = last_stats(db_url)
    assert run["stats"]["haowatch/refused/too large"] == 1 and run["errors"] >= 1
    error = rows(db_url, "SELECT last_fetch_error FROM listed_items")[0]["last_fetch_error"]
    assert "too large" in error or "larger than" in error
    crawl(site, db_url, HAOWATCH_MAX_RESPONSE_SIZE="1MB")  # the next check gets the real page
    assert [r["docid"] for r in rows(db_url, "SELECT docid FROM articles")] == [ARTICLE]


def test_an_oversized_account_page_fails_that_source_alone(site: StandinSite, db_url: str) -> None:
    site.add_account("T1512041896308", "北青网")
    site.publish("T1512041896308", docid(10), "北青文章", paragraphs("B"))
    site.script(f"/dy/media/{TID_A}.html", standin.gzip_bomb(100 * 1024 * 1024))
    add_sources(db_url, TID_A, "T1512041896308")
    crawl(site, db_url, HAOWATCH_MAX_RESPONSE_SIZE="1MB")
    assert [r["docid"] for r in rows(db_url, "SELECT docid FROM articles")] == [docid(10)]
    statuses = {r["tid"]: r["last_status"] for r in rows(db_url, "SELECT tid, last_status FROM sources")}
    assert statuses == {TID_A: "http_error", "T1512041896308": "ok"}


# --- Retry-After -------------------------------------------------------------------------------


def test_a_huge_retry_after_leaves_the_page_pending_instead_of_holding_the_crawl(site: StandinSite,
                                                                               db_url: str) -> None:
    for _ in range(5):
        site.script(PATH, standin.status(429, Retry_After="86400"))
    add_sources(db_url, TID_A)
    crawl(site, db_url, HAOWATCH_RETRY_WAIT_TOTAL="30s")
    run = last_stats(db_url)
    assert run["stats"].get("haowatch/retry_wait_seconds", 0) < 30  # never waited the day it asked for
    assert run["stats"]["haowatch/retry_budget_exhausted"] == 1
    assert site.requests(PATH) == [PATH]
    assert rows(db_url, "SELECT docid FROM articles") == []
    assert "429" in rows(db_url, "SELECT last_fetch_error FROM listed_items")[0]["last_fetch_error"]
    site.scripts[PATH].clear()
    crawl(site, db_url)  # pending, so the next check fetches it
    assert [r["docid"] for r in rows(db_url, "SELECT docid FROM articles")] == [ARTICLE]


def test_the_total_retry_wait_of_a_page_is_bounded(site: StandinSite, db_url: str) -> None:
    for _ in range(6):
        site.script(PATH, standin.status(503, Retry_After="1"))
    add_sources(db_url, TID_A)
    crawl(site, db_url, HAOWATCH_RETRY_WAIT_TOTAL="2s", HAOWATCH_RETRY_TIMES="6")
    run = last_stats(db_url)
    assert run["stats"]["haowatch/retry_wait_seconds"] <= 2.0
    assert run["stats"]["haowatch/retry_budget_exhausted"] == 1
    assert len(site.requests(PATH)) == 3  # first try, two 1 s retries, then the budget is spent


# --- list-API items ----------------------------------------------------------------------------


def _list_page(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"code": 0, "data": {"list": items}}).encode()  # ensure_ascii: \u0000, \ud800 as escapes


@pytest.mark.parametrize("poison", ["\x00", "\ud800", "\udfff tail", "\x1b[2J"], ids=["nul", "surrogate",
                                                                                     "low-surrogate", "escape"])
def test_one_bad_list_api_item_is_cleaned_alone_and_counted(site: StandinSite, db_url: str, poison: str) -> None:
    good = [{"docid": docid(n), "title": f"文章{n}", "ptime": "2026-01-22 19:08:49", "source": "史鹷的生活科普",
             "imgsrc": None} for n in (2, 3)]
    bad = {"docid": docid(4), "title": f"坏{poison}标题", "ptime": f"2026-01-22{poison}", "source": f"x{poison}",
           "imgsrc": f"https://nimg.ws.126.net/{poison}.jpg"}
    skipped = {"docid": f"{poison}K00000050514R9KQ", "title": "没有合法的文章号"}
    for n in (2, 3, 4):
        site.publish(TID_A, docid(n), f"文章{n}", paragraphs(f"L{n}"), listed=False)
    site.script("/v2/article/list.do", standin.body(_list_page([good[0], bad, skipped, good[1]]),
                                                    Content_Type="application/json;charset=UTF-8"))
    add_sources(db_url, TID_A)
    with connect(db_url) as conn:
        conn.execute("UPDATE sources SET wemedia_id = %s", (W_A,))
    out = run_cli("backfill", TID_A, "--pages", "1", db_url=db_url, env=crawl_env(site), timeout=240)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    listed = rows(db_url, "SELECT item_id, title, thumbnail FROM listed_items ORDER BY item_id")
    assert [r["item_id"] for r in listed] == [docid(2), docid(3), docid(4)]
    assert all("\x00" not in (r["title"] or "") and "\x1b" not in (r["title"] or "") for r in listed)
    assert listed[2]["title"].startswith("坏") and listed[2]["title"].endswith("标题")
    assert [r["docid"] for r in rows(db_url, "SELECT docid FROM articles ORDER BY docid")] == [
        docid(2), docid(3), docid(4)]
    run = last_stats(db_url)
    assert run["stats"]["haowatch/list_items_cleaned"] == 1 and run["stats"]["haowatch/list_items_skipped"] == 1
    assert "0 errors" in out.stdout


def test_a_dropped_item_logs_one_short_json_line(site: StandinSite, db_url: str) -> None:
    # An article the database refuses (a CHECK on the title length, for this test only) is
    # dropped with one short line, not the whole item.
    with connect(db_url) as conn:
        conn.execute("ALTER TABLE articles ADD CONSTRAINT test_title_short CHECK (length(title) < 5)")
    site.publish(TID_A, docid(7), "很长的标题" * 10, paragraphs("长" * 2000, 40))
    add_sources(db_url, TID_A)
    out = run_cli("crawl", db_url=db_url, env={**crawl_env(site), "HAOWATCH_LOG_JSON": "1"}, timeout=240)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    dropped = [r for r in records if "Dropped" in r["record"]["message"]]
    assert dropped, [r["record"]["message"] for r in records]
    assert all(len(line) < 4000 for line in lines)  # was a 30 KB dump of the article
    assert all(len(r["record"]["message"]) < 500 and "\n" not in r["record"]["message"] for r in dropped)


# --- one source's row never stops its batch ----------------------------------------------------

TID_B = "T1512041896308"


def test_a_source_with_extreme_values_fails_alone_and_the_batch_goes_on(site: StandinSite, db_url: str) -> None:
    site.add_account(TID_B, "北青网")
    site.publish(TID_B, docid(10), "北青文章", paragraphs("B"))
    site.script(f"/dy/media/{TID_B}.html", *[standin.status(503)] * 6)
    add_sources(db_url, TID_A, TID_B)
    with connect(db_url) as conn:
        conn.execute("UPDATE sources SET consecutive_failures = 2147483647, next_check_at = '-infinity',"
                     " interval = interval '366 days' WHERE tid = %s", (TID_B,))
    out = crawl(site, db_url, HAOWATCH_RETRY_TIMES="1")
    assert out.returncode == 0, out.stderr[-2000:]
    assert [r["docid"] for r in rows(db_url, "SELECT docid FROM articles")] == [ARTICLE]
    by_tid = {r["tid"]: r for r in rows(db_url, "SELECT tid, last_status, consecutive_failures, next_check_at > now()"
                                                " AS later FROM sources")}
    assert by_tid[TID_A]["last_status"] == "ok"
    assert by_tid[TID_B]["last_status"] == "http_error" and by_tid[TID_B]["later"]
    assert 0 < by_tid[TID_B]["consecutive_failures"] < 2147483647


def test_a_source_whose_row_cannot_be_updated_is_marked_error_alone(site: StandinSite, db_url: str) -> None:
    site.add_account(TID_B, "北青网")
    site.publish(TID_B, docid(10), "北青文章", paragraphs("B"))
    add_sources(db_url, TID_A, TID_B)
    with connect(db_url) as conn:
        # Stands for any value in B's row that its check cannot write back (here: refused by a CHECK).
        conn.execute(f"ALTER TABLE sources ADD CONSTRAINT test_b_never_ok CHECK (tid <> '{TID_B}'"
                     " OR last_status IS DISTINCT FROM 'ok')")
    out = crawl(site, db_url)
    assert out.returncode == 0, out.stderr[-2000:]
    by_tid = {r["tid"]: r for r in rows(db_url, "SELECT tid, last_status, last_error FROM sources")}
    assert by_tid[TID_A]["last_status"] == "ok"
    assert by_tid[TID_B]["last_status"] == "error" and "unusable" in by_tid[TID_B]["last_error"]
    assert sorted(r["docid"] for r in rows(db_url, "SELECT docid FROM articles")) == [ARTICLE, docid(10)]
