"""Bounded values (issue 9): no value a user can type, set or insert by SQL stops the service.

Settings are finite and in range, refused at start with one line naming the variable; intervals
are 1 s to 366 days in the CLI and in the schema; extremes written by SQL do not break claiming,
releasing, listing, status or metrics.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import DictRow

from db import queue as queue_db
from db import sources as sources_db
from db import status as status_db
from db.connection import connect
from scheduler.config import ConfigError, load_settings
from scheduler.web import metrics as web_metrics
from tests.helpers import one, run_cli

TID = "T1536566896022"
TID_B = "T1512041896308"


def _settings(**env: str):  # type: ignore[no-untyped-def]
    return load_settings({"HAOWATCH_ENV_FILE": "/nonexistent", **env})


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HAOWATCH_DOWNLOAD_DELAY", "inf"),
        ("HAOWATCH_DOWNLOAD_DELAY", "nan"),
        ("HAOWATCH_DOWNLOAD_DELAY", "-1"),
        ("HAOWATCH_DOWNLOAD_DELAY", "1e20"),
        ("HAOWATCH_RETRY_BACKOFF", "Infinity"),
        ("HAOWATCH_RETRY_BACKOFF", "1e308"),
        ("HAOWATCH_LEASE", "1e20"),
        ("HAOWATCH_LEASE", "100000000000000000000"),
        ("HAOWATCH_LEASE", "400d"),
        ("HAOWATCH_CRAWL_TIMEOUT", "100000000000000000000s"),
        ("HAOWATCH_REQUEST_TIMEOUT", "1e20"),
        ("HAOWATCH_REQUEST_TIMEOUT", "100000000000000000000"),
        ("HAOWATCH_TICK_SECONDS", "inf"),
        ("HAOWATCH_TICK_SECONDS", "٣٠"),  # Arabic-Indic digits: int() would take them
        ("HAOWATCH_HTTP_PORT", "99999"),
        ("HAOWATCH_HTTP_PORT", "-1"),
        ("HAOWATCH_MAX_BACKOFF", "1000000d"),
        ("HAOWATCH_DEFAULT_INTERVAL", "367d"),
        ("HAOWATCH_REVISIT_AGES", "1h,1e20"),
        ("HAOWATCH_SITE_URL", "http://127.0.0.1:99999"),
        ("HAOWATCH_MAX_RESPONSE_SIZE", "1TB"),
        ("HAOWATCH_MAX_RESPONSE_SIZE", "10"),
        ("HAOWATCH_MAX_HEADER_SIZE", "inf"),
        ("HAOWATCH_RETRY_WAIT_TOTAL", "1e9"),
        ("HAOWATCH_ALLOWED_HOSTS", "www.163.com,not a host"),
        ("HAOWATCH_HTTP_HOST", "300.1.2.3"),
        ("HAOWATCH_HTTP_HOST", "no such host!"),
        ("HAOWATCH_USER_AGENT", "x\r\nX-Injected: 1"),
    ],
)
def test_every_numeric_setting_is_finite_and_in_range(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        _settings(**{name: value})


def test_a_huge_bad_setting_is_shortened_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        _settings(HAOWATCH_TICK_SECONDS="9" * 100_000)
    assert len(str(info.value)) < 300


def test_new_settings_have_sane_defaults() -> None:
    s = _settings()
    assert s.max_response_bytes == 8 * 1024 * 1024 and s.max_header_bytes == 64 * 1024
    assert 0 < s.retry_wait_total <= 600
    assert "www.163.com" in s.allowed_hosts
    assert _settings(HAOWATCH_ALLOWED_HOSTS="").allowed_hosts == s.allowed_hosts  # compose passes ""
    assert _settings(HAOWATCH_ALLOWED_HOSTS="none").allowed_hosts == ()
    s = _settings(HAOWATCH_MAX_RESPONSE_SIZE="2MB", HAOWATCH_ALLOWED_HOSTS="a.example:8443, *.163.com")
    assert s.max_response_bytes == 2 * 1024 * 1024 and s.allowed_hosts == ("a.example:8443", "*.163.com")


def test_bad_settings_are_one_line_at_start_naming_the_variable(db_url: str) -> None:
    for name, value in (("HAOWATCH_DOWNLOAD_DELAY", "inf"), ("HAOWATCH_HTTP_PORT", "99999"),
                        ("HAOWATCH_LEASE", "1e20")):
        out = run_cli("sources", "list", db_url=db_url, env={name: value})
        assert out.returncode == 2, out
        assert len(out.stderr.strip().splitlines()) == 1 and name in out.stderr


def test_an_unusable_http_host_names_that_variable(db_url: str) -> None:
    # Syntactically a host name, but not an address of this machine: the bind fails at start.
    out = run_cli("run", db_url=db_url, env={"HAOWATCH_HTTP_HOST": "192.0.2.1", "HAOWATCH_HTTP_PORT": "0"},
                  timeout=60)
    assert out.returncode == 1, out
    assert "HAOWATCH_HTTP_HOST" in out.stderr and "HAOWATCH_HTTP_PORT" not in out.stderr
    assert "Traceback" not in out.stderr


# --- .env files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"HAOWATCH_TICK_SECONDS=5\nDATABASE_URL=postgresql://u:hunter2@h/db\xff\xfe\n",
        b"DATABASE_URL=postgresql://u:hunter2@h/db\nthis line is no setting hunter2\n",
        b"DATABASE_URL=postgresql://u:hunter2@h/db\nX=\x00hunter2\n",
    ],
)
def test_a_bad_env_file_is_one_line_naming_file_and_line_never_the_password(tmp_path: Path,
                                                                              content: bytes) -> None:
    env_file = tmp_path / "haowatch.env"
    env_file.write_bytes(content)
    out = run_cli("sources", "list", env={"HAOWATCH_ENV_FILE": str(env_file)})
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(env_file) in lines[0] and "line 2" in lines[0]
    assert "hunter2" not in out.stderr + out.stdout and "Traceback" not in out.stderr


# --- CLI arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["T１５３６５６６８９６０２２", "T١٥٣٦٥٦٦٨٩٦٠٢٢", "T۱۵۳۶۵۶۶۸۹۶۰۲۲"])
def test_non_ascii_digit_tids_are_refused_in_the_cli(db_url: str, given: str) -> None:
    out = run_cli("sources", "add", given, db_url=db_url)
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    with connect(db_url) as conn:
        assert one(conn, "SELECT count(*) AS n FROM sources")["n"] == 0


@pytest.mark.parametrize("argv", [["sources", "add", "T" + "1" * 100_000],
                                  ["sources", "add", "x" * 100_000],
                                  ["sources", "add", TID, "--interval", "9" * 100_000],
                                  ["refetch", "y" * 100_000],
                                  ["backfill", TID, "--pages", "7" * 100_000]])
def test_a_huge_argument_is_shortened_in_the_error(db_url: str, argv: list[str]) -> None:
    out = run_cli(*argv, db_url=db_url)
    assert out.returncode == 2, out.stderr[:500]
    assert len(out.stderr) < 600 and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("interval", ["367d", "1000000000000", "31623000s", "0.5s", "١٠m"])
def test_intervals_are_bounded_in_the_cli(db_url: str, interval: str) -> None:
    out = run_cli("sources", "add", TID, "--interval", interval, db_url=db_url)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out
    run_cli("sources", "add", TID, db_url=db_url)
    out = run_cli("sources", "set-interval", TID, interval, db_url=db_url)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out


def test_intervals_are_bounded_in_the_schema(conn: psycopg.Connection[DictRow]) -> None:
    conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '366 days')", (TID,))
    for bad in ("367 days", "1000000000000 seconds", "0 seconds"):
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, %s::interval)", (TID_B, bad))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE sources SET interval = %s::interval WHERE tid = %s", (bad, TID))


def test_migration_brings_existing_huge_intervals_into_range(empty_db_url: str) -> None:
    from db import migrate

    with connect(empty_db_url) as conn:
        for migration in migrate.available_migrations():
            if migration.version >= 4:
                break
            conn.execute(migration.sql.encode())
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                         " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                         (migration.version, migration.name))
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1000000000000 seconds')", (TID,))
        migrate.upgrade(conn)
        row = one(conn, "SELECT extract(epoch FROM interval)::bigint AS s FROM sources")
    assert row["s"] == 366 * 86400


# --- extremes written by SQL -------------------------------------------------------------------


EXTREMES = [
    "consecutive_failures = 2147483647",
    "consecutive_failures = -2147483648",
    "next_check_at = '-infinity'",
    "next_check_at = 'infinity'",
    "last_checked_at = 'infinity', last_success_at = '-infinity'",
    "next_check_at = '200000-01-01', added_at = '4000-01-01 BC'",
    "interval = interval '366 days', consecutive_failures = 2147483647",
    "name = E'\\x1b[2J\\x1b]0;pwned\\x07evil\\u202e'",
]


def _readable_everywhere(db_url: str) -> None:
    with connect(db_url) as conn:
        overview = status_db.overview(conn)
    text = web_metrics.render(lambda: (overview, {}, None, None)).decode()
    assert "haowatch_schedule_lag_seconds" in text and "inf" not in text.lower() and "nan" not in text.lower()
    listed = run_cli("sources", "list", db_url=db_url)
    assert listed.returncode == 0, listed.stderr
    assert TID in listed.stdout and TID_B in listed.stdout and "\x1b" not in listed.stdout
    as_json = run_cli("sources", "list", "--json", db_url=db_url)
    assert as_json.returncode == 0 and len(json.loads(as_json.stdout)) == 2, as_json.stderr
    status = run_cli("status", db_url=db_url)
    assert status.returncode == 0 and "\x1b" not in status.stdout, status.stderr
    as_json = run_cli("status", "--json", db_url=db_url)
    assert as_json.returncode == 0 and "Infinity" not in as_json.stdout, as_json.stderr


@pytest.mark.parametrize("assignment", EXTREMES)
def test_sql_written_extremes_break_neither_release_list_status_nor_metrics(db_url: str,
                                                                            assignment: str) -> None:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, next_check_at) VALUES (%s, now() - interval '1 minute'),"
                     " (%s, now() - interval '1 minute')", (TID, TID_B))
        conn.execute(f"UPDATE sources SET {assignment} WHERE tid = %s", (TID,))
    _readable_everywhere(db_url)  # as written
    with connect(db_url) as conn:
        claimed = [s.tid for s in queue_db.claim_sources(conn, "replica-1", 10, 3600)]
        # Giving up checks that never finished counts a failure for every claimed source.
        queue_db.give_up_sources(conn, "replica-1", claimed, "check did not finish", retry_seconds=300)
        sources_db.record_check(conn, TID, ok=False, status="http_error", error="HTTP 503", item_count=None,
                                max_backoff_seconds=21600)
        rows = conn.execute("SELECT tid, claimed_by, consecutive_failures FROM sources ORDER BY tid").fetchall()
        assert all(r["claimed_by"] is None for r in rows)
        assert all(0 <= r["consecutive_failures"] < 2147483647 for r in rows)
    _readable_everywhere(db_url)  # after a claim, a failed crawl and a check


def test_sources_list_escapes_control_characters_and_terminal_escapes(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, name, last_status) VALUES"
                     " (%s, E'\\x1b[2J\\x1b[31m红\\u009b1m\\u202eevil\\r', E'ok\\x07')", (TID,))
    out = run_cli("sources", "list", db_url=db_url)
    assert out.returncode == 0
    for raw in ("\x1b", "\x9b", "\u202e", "\r", "\x07"):
        assert raw not in out.stdout
    assert "\\x1b[2J" in out.stdout and "红" in out.stdout
    as_json = run_cli("sources", "list", "--json", db_url=db_url).stdout
    assert "\x1b" not in as_json and "\x9b" not in as_json and "\u202e" not in as_json
    assert json.loads(as_json)[0]["name"].startswith("\x1b[2J")  # escaped, not altered


def test_sources_release_releases_a_stuck_claim(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid) VALUES (%s), (%s)", (TID, TID_B))
        assert sorted(s.tid for s in queue_db.claim_sources(conn, "dead-replica", 10, 3600)) == sorted([TID, TID_B])
    out = run_cli("sources", "release", TID, db_url=db_url)
    assert out.returncode == 0 and "dead-replica" in out.stdout, out
    with connect(db_url) as conn:
        rows = {r["tid"]: r["claimed_by"] for r in conn.execute("SELECT tid, claimed_by FROM sources")}
        assert rows == {TID: None, TID_B: "dead-replica"}  # only the one named
        assert [s.tid for s in queue_db.claim_sources(conn, "live-replica", 10, 3600)] == [TID]
    assert "dead-replica" in run_cli("sources", "release", TID_B, db_url=db_url).stdout
    assert "was not claimed" in run_cli("sources", "release", TID_B, db_url=db_url).stdout
    again = run_cli("sources", "release", "T1000000000000", db_url=db_url)
    assert again.returncode == 2 and "not a watched source" in again.stderr


# --- no traceback with local variables, ever ---------------------------------------------------


def test_an_internal_error_before_logging_is_set_up_shows_no_local_variables(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys, scheduler.cli as cli\n"
        "def boom(*a, **k):\n"
        "    password = 'hunter2-local'\n"
        "    raise RuntimeError('settings exploded')\n"
        "cli.load_settings = boom\n"
        "sys.exit(cli.main(['status']))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HAOWATCH_ENV_FILE": "/nonexistent", "LOGURU_LEVEL": "TRACE",
           "DATABASE_URL": "postgresql://u:hunter2-env@127.0.0.1:1/x"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).parent.parent, timeout=60, check=False)
    assert out.returncode == 1, out.stderr
    assert "hunter2" not in out.stderr and "hunter2" not in out.stdout
    assert out.stderr.strip().splitlines() == ["haowatch: internal error: RuntimeError: settings exploded"]


def test_logging_setup_never_enables_diagnose() -> None:
    from loguru import logger

    from scheduler.logs import safe_defaults, setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        safe_defaults()
        for handler in logger._core.handlers.values():  # type: ignore[attr-defined]
            assert handler._exception_formatter._diagnose is False
        for json_lines in (False, True):
            setup_logging("DEBUG", json_lines)
            for handler in logger._core.handlers.values():  # type: ignore[attr-defined]
                assert handler._exception_formatter._diagnose is False
                assert handler._exception_formatter._backtrace is False
    finally:
        root.handlers, root.level = saved
        logger.remove()
