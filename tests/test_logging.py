"""Logs: Scrapy's and haowatch's lines through loguru, JSON lines on demand, never a password."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db.connection import connect, redact
from tests.helpers import run_cli
from tests.standin import StandinSite

TID = "T1536566896022"
SECRET = "s3cretpw"


@pytest.fixture
def site() -> Iterator[StandinSite]:
    with StandinSite() as s:
        s.add_account(TID, "甲")
        s.publish(TID, "K00000010514R9KQ", "文章一", ["第一段正文内容。"])
        yield s


def _secret(db_url: str) -> str:
    return str(conninfo_to_dict(db_url).get("password") or SECRET)


def _with_password(db_url: str) -> str:
    return make_conninfo(db_url, password=_secret(db_url))


def _crawl(site: StandinSite, db_url: str, **env: str) -> tuple[str, str]:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid) VALUES (%s) ON CONFLICT DO NOTHING", (TID,))
    # A server that trusts local connections accepts and ignores SECRET; the embedded server needs
    # its own generated password, which is in the URL already. Either must never be printed.
    out = run_cli("crawl", db_url=_with_password(db_url),
                  env={"HAOWATCH_SITE_URL": site.url, "HAOWATCH_DOWNLOAD_DELAY": "0", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, out.stderr


def test_json_lines_carry_scrapy_and_haowatch_records(site: StandinSite, db_url: str) -> None:
    # DEBUG: Scrapy's per-crawl boilerplate (such as "Spider opened") is demoted below INFO.
    stdout, stderr = _crawl(site, db_url, HAOWATCH_LOG_JSON="1", HAOWATCH_LOG_LEVEL="DEBUG")
    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    messages = [r["record"]["message"] for r in records]
    assert any("Spider opened" in m for m in messages)  # Scrapy's own logging, routed through loguru
    assert any(m.startswith("crawl #") for m in messages)
    assert _secret(db_url) not in stderr and _secret(db_url) not in stdout


def test_human_readable_by_default_and_no_password(site: StandinSite, db_url: str) -> None:
    stdout, stderr = _crawl(site, db_url, HAOWATCH_LOG_LEVEL="DEBUG")
    assert "INFO" in stderr and not stderr.lstrip().startswith("{")
    assert _secret(db_url) not in stderr and _secret(db_url) not in stdout


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("postgresql://haowatch:hunter2@db:5432/haowatch", "hunter2"),
        ("host=db password=hunter2 user=x", "hunter2"),
        ("connection to postgresql://u:p%40ss@h/d failed", "p%40ss"),
    ],
)
def test_redact(text: str, hidden: str) -> None:
    assert hidden not in redact(text)
