"""Issue 11 end to end: discovery channels, no silent gaps, blocks, evidence and `haowatch check`,
with the real `haowatch` command, real Scrapy, stand-in site variants and real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg.rows import DictRow

from crawler.channels import parse_as
from crawler.extract import to_dict
from db.connection import connect
from tests.helpers import run_cli
from tests.standin import Behaviour, StandinSite

TID = "T1536566896022"
W_ID = "W8207225059024484717"


def paragraphs(tag: str) -> list[str]:
    return [f"{tag}：第{i}段，这是一篇用来检验发现渠道的正文。" for i in range(1, 4)]


def docid(n: int) -> str:
    return f"K{n:07d}0514R9KQ"


def ptime(n: int) -> str:
    return f"2026-01-{1 + n // 24:02d} {n % 24:02d}:00:00"


@pytest.fixture
def site() -> Iterator[StandinSite]:
    with StandinSite() as s:
        s.add_account(TID, "史鹷的生活科普", W_ID)
        yield s


def env(site: StandinSite, **extra: str) -> dict[str, str]:
    return {
        "HAOWATCH_SITE_URL": site.url, "HAOWATCH_LIST_API_URL": site.url, "HAOWATCH_APP_API_URL": site.url,
        "HAOWATCH_DOWNLOAD_DELAY": "0", "HAOWATCH_RETRY_BACKOFF": "0.05", "HAOWATCH_CONCURRENCY": "4",
        "HAOWATCH_REQUEST_TIMEOUT": "10", "HAOWATCH_BLOCK_SLOWDOWN_MAX": "0.2", **extra,
    }


def crawl(site: StandinSite, db_url: str, expect: int = 0, **extra: str) -> subprocess.CompletedProcess[str]:
    out = run_cli("crawl", db_url=db_url, env=env(site, **extra), timeout=180)
    assert out.returncode == expect, out.stderr[-3000:]
    return out


def one(db_url: str, query: str, params: tuple[Any, ...] = ()) -> DictRow:
    with connect(db_url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def stored(db_url: str) -> set[str]:
    with connect(db_url) as conn:
        return {r["docid"] for r in conn.execute("SELECT docid FROM articles")}


def last_stats(db_url: str) -> dict[str, Any]:
    return one(db_url, "SELECT stats FROM crawl_runs ORDER BY id DESC LIMIT 1")["stats"]


def publish(site: StandinSite, numbers: range) -> None:
    for n in numbers:
        site.publish(TID, docid(n), f"文章{n}", paragraphs(f"A{n}"), ptime=ptime(n))


def add_source(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid) VALUES (%s)", (TID,))


@pytest.mark.parametrize("mode", ["redesigned", "blocked", "captcha"])
def test_articles_keep_arriving_when_the_account_page_breaks(site: StandinSite, db_url: str, mode: str) -> None:
    publish(site, range(1, 3))
    add_source(db_url)
    crawl(site, db_url)  # learns the W-id from the first article
    assert one(db_url, "SELECT last_status, active_channel FROM sources") == {"last_status": "ok",
                                                                              "active_channel": "account"}

    site.account_mode = mode
    publish(site, range(3, 5))
    out = crawl(site, db_url)
    assert stored(db_url) == {docid(n) for n in range(1, 5)}
    source = one(db_url, "SELECT last_status, last_error, active_channel, consecutive_failures FROM sources")
    assert source["last_status"] == "degraded" and source["active_channel"] == "listapi"
    assert source["consecutive_failures"] == 0, "a degraded check still found the list"
    expected = "blocked" if mode != "redesigned" else "parse_failed"
    assert one(db_url, "SELECT last_status FROM source_channels WHERE channel = 'account'")["last_status"] == expected
    assert f"source {TID} DEGRADED" in out.stderr and out.stderr.count("DEGRADED") == 1
    assert last_stats(db_url)["haowatch/degraded"] == 1
    captured = one(db_url, "SELECT reason, page_type, status FROM captured_pages")
    assert captured["reason"] == expected and captured["page_type"] == "account"

    site.account_mode = "normal"
    publish(site, range(5, 6))
    out = crawl(site, db_url)
    assert docid(5) in stored(db_url)
    assert one(db_url, "SELECT last_status, active_channel FROM sources") == {"last_status": "ok",
                                                                              "active_channel": "account"}
    assert "recovered" in out.stderr


def test_blocked_everywhere_is_blocked_not_parse_failed(site: StandinSite, db_url: str) -> None:
    publish(site, range(1, 2))
    add_source(db_url)
    crawl(site, db_url)
    site.account_mode = site.list_api_mode = site.app_list_mode = "blocked"
    out = crawl(site, db_url, expect=1)  # every source checked failed
    source = one(db_url, "SELECT last_status, consecutive_failures FROM sources")
    assert source == {"last_status": "blocked", "consecutive_failures": 1}
    assert "BLOCKED on every channel" in out.stderr
    stats = last_stats(db_url)
    assert stats["haowatch/blocked_responses"] >= 3
    assert stats.get("haowatch/block_slowdown_max_seconds", 0) > 0
    reasons = {r["reason"] for r in run_json(site, db_url, "captured", "list", "--json")}
    assert reasons == {"blocked"}
    status = run_cli("status", db_url=db_url, env=env(site))
    assert "blocked" in status.stdout and TID in status.stdout


def run_json(site: StandinSite, db_url: str, *args: str) -> list[dict[str, Any]]:
    out = run_cli(*args, db_url=db_url, env=env(site))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_25_articles_between_two_checks_while_the_page_shows_10(site: StandinSite, db_url: str) -> None:
    site.account_page_size = 10
    publish(site, range(1, 4))
    add_source(db_url)
    crawl(site, db_url)
    assert len(stored(db_url)) == 3

    publish(site, range(4, 29))  # 25 more; the account page shows only the newest 10
    crawl(site, db_url)
    assert stored(db_url) == {docid(n) for n in range(1, 29)}
    stats = last_stats(db_url)
    assert stats["haowatch/overflow"] == 1 and stats["haowatch/overflow_closed"] == 1
    assert stats["haowatch/overflow_pages"] == 3  # list API pages 1-3: page 3 reaches stored items
    assert one(db_url, "SELECT count(*) AS n FROM source_gaps")["n"] == 0

    # Next check: page and store overlap again, no paging back.
    crawl(site, db_url)
    assert "haowatch/overflow" not in last_stats(db_url)


def test_a_gap_that_cannot_be_closed_is_recorded_and_shown(site: StandinSite, db_url: str) -> None:
    site.account_page_size = 10
    publish(site, range(1, 3))
    add_source(db_url)
    crawl(site, db_url)
    publish(site, range(3, 40))
    out = crawl(site, db_url, HAOWATCH_GAP_PAGES="2")
    assert "may be MISSING" in out.stderr
    gap = one(db_url, "SELECT tid, pages_walked, closed_at FROM source_gaps")
    assert gap["tid"] == TID and gap["pages_walked"] == 2 and gap["closed_at"] is None
    status = run_cli("status", db_url=db_url, env=env(site))
    assert f"GAP {TID}" in status.stdout, status.stdout
    out = run_cli("backfill", TID, "--pages", "5", db_url=db_url, env=env(site))
    assert out.returncode == 0 and "closed 1 recorded gap" in out.stdout, out.stdout + out.stderr
    assert stored(db_url) == {docid(n) for n in range(1, 40)}
    assert f"GAP {TID}" not in run_cli("status", db_url=db_url, env=env(site)).stdout


def test_a_cross_check_finds_an_item_the_page_missed(site: StandinSite, db_url: str) -> None:
    publish(site, range(1, 4))
    add_source(db_url)
    crawl(site, db_url)
    publish(site, range(4, 6))
    site.hidden_from_page = {docid(4)}  # the account page skips it; both list channels list it
    crawl(site, db_url)  # not a cross-check (once a day by default): the page's view only
    assert docid(4) not in stored(db_url) and docid(5) in stored(db_url)
    crawl(site, db_url, HAOWATCH_CROSS_CHECK_EVERY="1")
    assert docid(4) in stored(db_url)
    stats = last_stats(db_url)
    assert stats["haowatch/drift"] == 1 and stats["haowatch/cross_checks"] == 1
    drift = one(db_url, "SELECT drift_items FROM source_channels WHERE channel = 'account'")
    assert drift["drift_items"] == 1
    assert one(db_url, "SELECT last_cross_check_at IS NOT NULL AS done FROM sources")["done"]


def test_a_captured_page_exported_as_a_fixture_parses_the_same(site: StandinSite, db_url: str,
                                                               tmp_path: Path) -> None:
    publish(site, range(1, 2))
    add_source(db_url)
    crawl(site, db_url)
    site.account_mode = "redesigned"
    site.script(f"/dy/article/{docid(2)}.html", *[_cut_article(site)] * 3)
    publish(site, range(2, 3))
    crawl(site, db_url)
    listed = run_json(site, db_url, "captured", "list", "--json")
    assert {r["reason"] for r in listed} == {"parse_failed", "unexpected"}, listed
    out = run_cli("captured", "export", str(tmp_path), db_url=db_url, env=env(site))
    assert out.returncode == 0, out.stderr
    cases = sorted(p.parent for p in tmp_path.glob("*/*/expected.json"))
    assert {c.parent.name for c in cases} == {"account", "article"}
    for case in cases:
        meta = json.loads((case / "meta.json").read_text(encoding="utf-8"))
        assert meta["reason"] in ("parse_failed", "unexpected") and meta["url"].startswith(site.url)
        again = to_dict(parse_as(case.parent.name, (case / "page.html").read_bytes(), meta["url"],
                                 meta["content_type"], meta["tid"]))
        assert again == json.loads((case / "expected.json").read_text(encoding="utf-8"))
        assert again["kind"] == "unexpected"


def _cut_article(site: StandinSite) -> Behaviour:  # an article page whose HTML stops inside the body
    from tests import standin

    return standin.cut_html()


def check(site: StandinSite, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("check", TID, *args, env=env(site), timeout=60)


def test_haowatch_check_exit_codes_per_state(site: StandinSite, tmp_path: Path) -> None:
    publish(site, range(1, 4))
    healthy = check(site)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "verdict: OK" in healthy.stdout and W_ID in healthy.stdout
    assert "would store: 「文章3」" in healthy.stdout

    site.account_mode = "redesigned"
    degraded = check(site, "--json")
    assert degraded.returncode == 1, degraded.stdout + degraded.stderr
    report = json.loads(degraded.stdout)
    channels = {c["channel"]: c for c in report["channels"]}
    assert channels["account"]["status"] == "parse_failed" and channels["listapi"]["items"] == 3
    assert report["overlap"] == {"listapi+applist": 3}

    site.account_mode = site.list_api_mode = site.app_list_mode = "blocked"
    blocked = check(site, "--wemedia-id", W_ID, "--save", str(tmp_path / "saved"))
    assert blocked.returncode == 2, blocked.stdout + blocked.stderr
    assert blocked.stdout.count("BLOCKED: HTTP 403") == 3
    saved = sorted(p.relative_to(tmp_path / "saved").parent.as_posix()
                   for p in (tmp_path / "saved").glob("*/*/page.html"))
    assert saved == [f"account/{TID}_account", f"applist/{TID}_applist", f"listapi/{TID}_listapi"]

    bad = run_cli("check", "T123", env=env(site))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
