"""Every ``haowatch sources`` path, including the refusals (one line, exit code 2, nothing written)."""

from __future__ import annotations

import json

import pytest

from db.connection import connect
from tests.helpers import one, run_cli

TID = "T1536566896022"


def _count(db_url: str) -> int:
    with connect(db_url) as conn:
        return one(conn, "SELECT count(*) AS n FROM sources")["n"]


@pytest.mark.parametrize(
    "given",
    [
        TID,
        f"https://www.163.com/dy/media/{TID}.html",
        f"https://www.163.com/dy/media/{TID}.html?f=post2020_dy_recommends#x",
        f"http://www.163.com/dy/media/{TID}.html",
        f"https://c.m.163.com/news/sub/{TID}.html",
        f"  {TID}  ",
    ],
)
def test_add_accepts_ids_and_urls(db_url: str, given: str) -> None:
    out = run_cli("sources", "add", given, db_url=db_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"added {TID} (every 30m)"
    with connect(db_url) as conn:
        assert one(conn, "SELECT tid FROM sources")["tid"] == TID


def test_add_with_interval_and_name_then_again_changes_nothing(db_url: str) -> None:
    out = run_cli("sources", "add", TID, "--interval", "2h", "--name", "字母榜", db_url=db_url)
    assert out.returncode == 0 and "every 2h" in out.stdout
    again = run_cli("sources", "add", TID, "--interval", "5m", "--name", "other", db_url=db_url)
    assert again.returncode == 0 and again.stdout.strip() == f"{TID} is already watched"
    with connect(db_url) as conn:
        row = one(conn, "SELECT name, extract(epoch FROM interval)::int AS s FROM sources")
    assert row == {"name": "字母榜", "s": 7200}


@pytest.mark.parametrize(
    "given",
    [
        "T123",
        "T15365668960221",
        "X1536566896022",
        "hello",
        "",
        "https://www.example.com/dy/media/T1536566896022.html",
        "https://www.163.com/dy/article/J22CN60P0514R9KQ.html",
        "https://www.163.com.evil.org/dy/media/T1536566896022.html",
        "ftp://www.163.com/dy/media/T1536566896022.html",
        "T1536566896022'; DROP TABLE sources; --",
        "1 OR 1=1",
    ],
)
def test_add_refuses_junk_with_one_line_and_exit_2(db_url: str, given: str) -> None:
    out = run_cli("sources", "add", given, db_url=db_url)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("haowatch: ")
    assert "Traceback" not in out.stderr
    assert _count(db_url) == 0


@pytest.mark.parametrize("interval", ["0s", "soon", "-5m", "15x", ""])
def test_add_refuses_bad_interval(db_url: str, interval: str) -> None:
    out = run_cli("sources", "add", TID, "--interval", interval, db_url=db_url)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert _count(db_url) == 0


def test_list_table_and_json(db_url: str) -> None:
    run_cli("sources", "add", TID, "--name", "字母榜", db_url=db_url)
    run_cli("sources", "add", "T1512041896308", "--interval", "90s", db_url=db_url)
    table = run_cli("sources", "list", db_url=db_url)
    assert table.returncode == 0
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["TID", "NAME", "EVERY"]
    assert TID in lines[1] and "字母榜" in lines[1] and "30m" in lines[1]
    assert "T1512041896308" in lines[2] and "90s" in lines[2]
    data = json.loads(run_cli("sources", "list", "--json", db_url=db_url).stdout)
    assert [d["tid"] for d in data] == [TID, "T1512041896308"]
    assert data[1]["interval_seconds"] == 90 and data[0]["enabled"] is True


def test_pause_resume_set_interval_remove(db_url: str) -> None:
    run_cli("sources", "add", TID, db_url=db_url)
    assert run_cli("sources", "pause", TID, db_url=db_url).stdout.strip() == f"paused {TID}"
    with connect(db_url) as conn:
        assert one(conn, "SELECT enabled FROM sources")["enabled"] is False
    assert run_cli("sources", "resume", f"https://www.163.com/dy/media/{TID}.html", db_url=db_url).returncode == 0
    out = run_cli("sources", "set-interval", TID, "15m", db_url=db_url)
    assert out.returncode == 0 and "15m" in out.stdout
    with connect(db_url) as conn:
        row = one(conn, "SELECT enabled, extract(epoch FROM interval)::int AS s FROM sources")
        assert row == {"enabled": True, "s": 900}
        conn.execute(
            "INSERT INTO articles (docid, source_tid, url) VALUES ('J22CN60P0514R9KQ', %s, 'u')", (TID,)
        )
    assert run_cli("sources", "remove", TID, db_url=db_url).stdout.strip() == f"removed {TID}"
    assert _count(db_url) == 0
    with connect(db_url) as conn:
        assert one(conn, "SELECT count(*) AS n FROM articles")["n"] == 1


@pytest.mark.parametrize("action", [["pause"], ["resume"], ["remove"], ["set-interval", "TID", "5m"]])
def test_actions_on_unknown_source_refuse(db_url: str, action: list[str]) -> None:
    args = [a if a != "TID" else TID for a in action]
    if len(args) == 1:
        args.append(TID)
    out = run_cli("sources", *args, db_url=db_url)
    assert out.returncode == 2 and "not a watched source" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["sources"],
        ["sources", "add"],
        ["sources", "set-interval", TID],
        ["sources", "set-interval", TID, "often"],
        ["sources", "pause", "junk"],
        ["backfill", TID, "--pages", "x"],
    ],
)
def test_usage_errors_are_one_line(db_url: str, argv: list[str]) -> None:
    out = run_cli(*argv, db_url=db_url)
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_bad_settings_name_the_variable(db_url: str) -> None:
    out = run_cli("sources", "list", db_url=db_url, env={"HAOWATCH_SITE_URL": "not a url"})
    assert out.returncode == 2 and "HAOWATCH_SITE_URL" in out.stderr
    out = run_cli("sources", "list", db_url=db_url, env={"HAOWATCH_CONCURRENCY": "many"})
    assert out.returncode == 2 and "HAOWATCH_CONCURRENCY" in out.stderr


def test_unreachable_database_is_one_line_without_password() -> None:
    out = run_cli("sources", "list", db_url="postgresql://haowatch:s3cret@127.0.0.1:1/none")
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1
    assert "s3cret" not in out.stderr and "database unavailable" in out.stderr
