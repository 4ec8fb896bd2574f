"""Hostile answers (issue 9): foreign content is never stored, no answer is too big to refuse,
and no server can hold a crawl hostage with ``Retry-After``.

Real ``haowatch crawl`` processes against stand-in sites on loopback: the NetEase stand-in and a
second, foreign one (another address, or another port of the same address).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import standin
from tests.helpers import run_cli
from tests.standin import StandinSite
from tests.test_crawl_e2e import TID_A, add_sources, crawl_env, docid, paragraphs, rows

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


def last_stats(db_url: str) -> dict:
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
