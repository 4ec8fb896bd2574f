"""Schema migrations: fresh, repeated and concurrent upgrades leave one correct schema."""

from __future__ import annotations

import concurrent.futures
import re
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow

from db import migrate
from db.connection import connect
from tests.helpers import one, run_cli

TABLES = {"sources", "articles", "article_revisions", "link_targets", "link_lists", "link_sightings",
          "account_snapshots", "crawl_runs", "listed_items", "schema_migrations"}


def _tables(conn: psycopg.Connection[DictRow]) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r["tablename"] for r in rows}


def _schema_fingerprint(conn: psycopg.Connection[DictRow]) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY 1, 2"
    ).fetchall()
    return [tuple(r.values()) for r in rows]


def test_fresh_upgrade_creates_every_table(empty_db_url: str) -> None:
    with connect(empty_db_url) as conn:
        applied = migrate.upgrade(conn)
        assert [m.version for m in applied] == [m.version for m in migrate.available_migrations()]
        assert _tables(conn) >= TABLES
        views = {r["viewname"] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname='public'")}
        assert {"latest_articles", "trending_links", "videos", "article_links", "trending_history",
                "trending_now"} <= views


def test_repeated_upgrade_changes_nothing(empty_db_url: str) -> None:
    with connect(empty_db_url) as conn:
        migrate.upgrade(conn)
        before = _schema_fingerprint(conn)
        assert migrate.upgrade(conn) == []
        assert _schema_fingerprint(conn) == before
        count = one(conn, "SELECT count(*) AS n FROM schema_migrations")["n"]
        assert count == len(migrate.available_migrations())


def test_concurrent_upgrades_do_not_collide(empty_db_url: str) -> None:
    def upgrade_once() -> int:
        with connect(empty_db_url) as conn:
            return len(migrate.upgrade(conn))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: upgrade_once(), range(4)))
    assert sorted(results) == [0, 0, 0, len(migrate.available_migrations())]
    with connect(empty_db_url) as conn:
        assert _tables(conn) >= TABLES
        versions = [r["version"] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == sorted({m.version for m in migrate.available_migrations()})


def test_cli_upgrade_twice_at_once(empty_db_url: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        outs = list(pool.map(lambda _: run_cli("db", "upgrade", db_url=empty_db_url), range(2)))
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    texts = sorted(o.stdout.strip() for o in outs)
    total = len(migrate.available_migrations())
    assert texts[0].startswith(f"applied {total} migration(s)")
    assert texts[1] == f"schema is up to date ({total} migrations)"
    again = run_cli("db", "upgrade", db_url=empty_db_url)
    assert again.returncode == 0 and again.stdout.startswith("schema is up to date")


# What users stored or query is never dropped (no table, column, view, schema or database, no
# TRUNCATE). An index holds nothing of its own (it is rebuilt from its table): replacing one is allowed.
def test_migrations_never_drop() -> None:
    for m in migrate.available_migrations():
        sql = m.sql.lower()
        assert "truncate" not in sql, m.name
        assert set(re.findall(r"\bdrop\s+(\w+)", sql)) <= {"index"}, m.name


def test_plain_sql_insert_gives_a_working_source(conn: psycopg.Connection[DictRow]) -> None:
    conn.execute("INSERT INTO sources (tid) VALUES ('T1536566896022')")
    row = one(conn, "SELECT * FROM sources")
    assert row["enabled"] is True
    assert row["interval"].total_seconds() == 1800
    assert row["next_check_at"] is not None and row["consecutive_failures"] == 0


@pytest.mark.parametrize("tid", ["T123", "t1536566896022", "T15365668960221", "1536566896022", "", "T153656689602X"])
def test_sources_check_refuses_bad_tids(conn: psycopg.Connection[DictRow], tid: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO sources (tid) VALUES (%s)", (tid,))


def test_removing_a_source_keeps_its_articles(conn: psycopg.Connection[DictRow]) -> None:
    conn.execute("INSERT INTO sources (tid) VALUES ('T1536566896022')")
    conn.execute(
        "INSERT INTO articles (docid, source_tid, url, title) VALUES"
        " ('J22CN60P0514R9KQ', 'T1536566896022', 'https://www.163.com/dy/article/J22CN60P0514R9KQ.html', 't')"
    )
    conn.execute("DELETE FROM sources WHERE tid = 'T1536566896022'")
    assert one(conn, "SELECT count(*) AS n FROM articles")["n"] == 1
