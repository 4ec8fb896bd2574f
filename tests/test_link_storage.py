"""Links stored once (migration 005): conversion of a database made before it, the article_links view,
trending history, partitions.

The "old store path" below is the link upsert of haowatch before migration 005, kept here verbatim so
a test can build exactly the database an existing deployment has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import Connection
from psycopg.rows import DictRow

from db import maintenance, migrate
from db.articles import store_article
from db.connection import connect
from db.records import AccountFacts, ArticleRecord, LinkRecord
from tests.helpers import one

README = Path(__file__).resolve().parent.parent / "README.md"
T0 = datetime(2026, 1, 22, 3, 0, tzinfo=UTC)

OLD_LINKS_SQL = (
    "INSERT INTO article_links (docid, block, module, position, target_url, target_docid, title,"
    " source_name, shown_at, first_seen_at, seen_at)"
    " SELECT %s, l.block, l.module, l.position, l.url, l.target_docid, l.title, l.source_name, l.shown_at,"
    " %s, %s FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[],"
    " %s::timestamptz[]) AS l(block, module, position, url, target_docid, title, source_name, shown_at)"
    " ON CONFLICT ON CONSTRAINT article_links_unique DO UPDATE SET position = excluded.position,"
    " title = excluded.title, source_name = excluded.source_name,"
    " shown_at = coalesce(excluded.shown_at, article_links.shown_at), seen_at = excluded.seen_at,"
    " times_seen = article_links.times_seen + 1"
    " WHERE article_links.seen_at < excluded.seen_at"
)


def readme_queries() -> list[str]:
    """The example SQL statements of the README's Database section, in order."""
    section = README.read_text(encoding="utf-8").split("## Database", 1)[1].split("\n## ", 1)[0]
    queries: list[str] = []
    for block in re.findall(r"```sql\n(.*?)```", section, flags=re.S):
        text = "\n".join(line for line in block.splitlines() if not line.strip().startswith("--"))
        queries += [q.strip() for q in text.split(";") if q.strip().upper().startswith("SELECT")]
    return queries


def docid(n: int) -> str:
    return f"K{n:07d}0514R9KQ"


def article_url(n: int) -> str:
    return f"https://www.163.com/dy/article/{docid(n)}.html"


def trending(version: int) -> list[LinkRecord]:
    """The site-wide 热点推荐 list, version ``version``: each version drops one link and adds one."""
    ids = list(range(100 + version, 108 + version))
    return [LinkRecord("trending", pos, article_url(i), title=f"热点新闻{i}", docid=docid(i), source="网易新闻")
            for pos, i in enumerate(ids, 1)]


def side(version: int) -> list[LinkRecord]:
    links = [LinkRecord("side", pos, article_url(200 + pos + version), title=f"侧栏{pos + version}", module="热门",
                  docid=docid(200 + pos + version)) for pos in range(1, 5)]
    links.append(LinkRecord("side", 1, "https://www.163.com/special/video/", title="视频", module="视频"))
    return links


def related(n: int, fetch: int) -> list[LinkRecord]:
    links = [LinkRecord("related", pos, article_url(300 + n * 3 + pos), title=f"相关{n}-{pos}",
                  docid=docid(300 + n * 3 + pos), source="某号", published_at=T0 - timedelta(days=pos))
             for pos in range(1, 5)]
    if fetch:  # on a revisit one related link got a new title and one new link appeared
        links[0] = LinkRecord("related", 1, links[0].url, title=f"相关{n}-1（更新）", docid=links[0].docid)
        links.append(LinkRecord("related", 5, article_url(399), title="新相关", docid=docid(399)))
    links.append(LinkRecord("related", 6, links[1].url, title=links[1].title, docid=links[1].docid))  # a repeat
    return links


def fetches() -> Iterator[tuple[int, datetime, list[LinkRecord]]]:
    """(article number, fetch time, links shown): six articles over a day, some fetched again later."""
    for n in range(6):
        at = T0 + timedelta(hours=n)
        yield n, at, [*related(n, 0), *trending(n // 2), *side(n // 3)]
    for n in (1, 4):
        at = T0 + timedelta(hours=8 + n)
        yield n, at, [*related(n, 1), *trending(5), *side(2)]
    yield 4, T0 + timedelta(hours=8 + 4), [*related(4, 1), *trending(5), *side(2)]  # the same fetch twice


def page(n: int, links: list[LinkRecord]) -> ArticleRecord:
    return ArticleRecord(
        docid=docid(n), url=article_url(n), title=f"白俄罗斯新闻{n}", published_at=T0 - timedelta(hours=1),
        ip_location="北京", account=AccountFacts(tid="T1536566896022", name="某号"),
        body_paragraphs=[f"正文{n}"], body_text=f"正文{n}", body_html=f"<p>正文{n}</p>", links=links,
    )


def store_old(conn: Connection[DictRow], n: int, at: datetime, links: list[LinkRecord]) -> None:
    """What haowatch before migration 005 stored for one fetch (article row, links, snapshot)."""
    conn.execute(
        "INSERT INTO articles (docid, source_tid, url, title, published_at, body_text, content_hash, first_seen_at,"
        " last_fetched_at) VALUES (%s, 'T1536566896022', %s, %s, %s, %s, 'h', %s, %s)"
        " ON CONFLICT (docid) DO UPDATE SET last_fetched_at = excluded.last_fetched_at",
        (docid(n), article_url(n), f"白俄罗斯新闻{n}", T0 - timedelta(hours=1), f"正文{n}", at, at),
    )
    seen: set[tuple[str, str | None, str]] = set()
    unique = []
    for link in links:
        if (link.block, link.module, link.url) not in seen:
            seen.add((link.block, link.module, link.url))
            unique.append(link)
    conn.execute(OLD_LINKS_SQL, (
        docid(n), at, at, [x.block for x in unique], [x.module for x in unique], [x.position for x in unique],
        [x.url for x in unique], [x.docid for x in unique], [x.title for x in unique], [x.source for x in unique],
        [x.published_at for x in unique]))


def upgrade_to(conn: Connection[DictRow], version: int) -> None:
    """Apply migrations up to ``version`` only, as an older haowatch would have."""
    conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())")
    for m in migrate.available_migrations():
        if m.version <= version:
            conn.execute(m.sql.encode("utf-8"))
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name))


def answers(conn: Connection[DictRow], queries: list[str]) -> dict[str, list[tuple[Any, ...]] | None]:
    """Each query's rows, sorted (None when the query needs objects this schema does not have yet)."""
    out: dict[str, list[tuple[Any, ...]] | None] = {}
    for q in queries:
        try:
            with conn.transaction():
                rows = [tuple(r.values()) for r in conn.execute(q).fetchall()]
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedColumn):
            out[q] = None
            continue
        out[q] = sorted(rows, key=repr)
    return out


LINK_DUMPS = [
    "SELECT * FROM article_links",
    "SELECT * FROM trending_links",
    "SELECT block, count(*), sum(times_seen) FROM article_links GROUP BY block",
    "SELECT docid, target_url, times_seen, first_seen_at, seen_at FROM article_links WHERE docid = 'K00000040514R9KQ'",
]


def old_database(conn: Connection[DictRow]) -> None:
    upgrade_to(conn, 3)
    for n, at, links in fetches():
        store_old(conn, n, at, links)
    conn.execute("INSERT INTO article_revisions (docid, revision, fetched_at, replaced_at, title, body_text)"
                 " VALUES (%s, 1, %s, %s, '旧标题', '旧正文')", (docid(1), T0, T0 + timedelta(hours=9)))
    conn.execute("INSERT INTO account_snapshots (tid, observed_at, name, article_count, follower_count)"
                 " VALUES ('T1536566896022', %s, '某号', 10, 99), ('T1536566896022', %s, '某号', 11, 99)",
                 (T0 - timedelta(days=40), T0))


def test_readme_queries_are_found() -> None:
    queries = readme_queries()
    assert any("trending_history" in q for q in queries) and any("search_articles" in q for q in queries)
    assert any("trending_links" in q for q in queries)


def test_migration_converts_a_database_made_before_it(empty_db_url: str) -> None:
    queries = readme_queries() + LINK_DUMPS
    with connect(empty_db_url) as conn:
        old_database(conn)
        old_rows = one(conn, "SELECT count(*) AS n FROM article_links")["n"]
        before = answers(conn, queries)
        applied = migrate.upgrade(conn)
        assert 5 in [m.version for m in applied]
        after = answers(conn, queries)

        for q in queries:
            assert after[q] is not None, q  # every README query runs on the new schema
            if before[q] is not None:
                assert after[q] == before[q], q
        assert before["SELECT * FROM article_links"], "the old database had links"
        # Nothing users stored is gone: the old tables are kept, renamed, with every row.
        assert one(conn, "SELECT count(*) AS n FROM article_links_pre005")["n"] == old_rows
        assert one(conn, "SELECT count(*) AS n FROM article_revisions")["n"] == 1
        assert one(conn, "SELECT count(*) AS n FROM article_revisions_pre005")["n"] == 1
        assert one(conn, "SELECT count(*) AS n FROM account_snapshots")["n"] == 2
        # Converted rows sit in their month's partition; the site-wide lists are stored once.
        parts = {r["p"] for r in conn.execute("SELECT tableoid::regclass::text AS p FROM account_snapshots")}
        assert parts == {"account_snapshots_2025_12", "account_snapshots_2026_01"}
        shared = one(conn, "SELECT max(pages) AS n FROM link_lists WHERE block = 'trending'")
        assert shared["n"] == 2  # articles 0 and 1 showed the same list: one row
        # New stores keep counting on top of converted rows exactly as the old table did.
        n, at, links = 4, T0 + timedelta(hours=20), [*related(4, 1), *trending(5), *side(2)]
        store_article(conn, page(n, links), source_tid="T1536566896022", content_hash="h", fetched_at=at)
        row = one(conn, "SELECT times_seen, first_seen_at, seen_at FROM article_links WHERE docid = %s"
                        " AND target_url = %s", (docid(4), trending(5)[0].url))
        assert (row["times_seen"], row["seen_at"]) == (3, at)
        assert row["first_seen_at"] == T0 + timedelta(hours=4)  # it was in the list of the first fetch too


def test_new_store_path_gives_the_same_article_links(pg_admin_url: str, empty_db_url: str, db_url: str) -> None:
    with connect(empty_db_url) as old, connect(db_url) as new:
        upgrade_to(old, 3)
        for n, at, links in fetches():
            store_old(old, n, at, links)
            store_article(new, page(n, links), source_tid="T1536566896022", content_hash="h", fetched_at=at)
        for q in LINK_DUMPS:
            assert answers(new, [q]) == answers(old, [q]), q


def test_site_wide_lists_and_targets_are_stored_once(conn: Connection[DictRow]) -> None:
    for n in range(5):
        store_article(conn, page(n, [*related(n, 0), *trending(0), *side(0)]), source_tid="T1536566896022",
                      content_hash=f"h{n}", fetched_at=T0 + timedelta(minutes=n))
    lists = conn.execute("SELECT block, count(*) AS n, sum(pages) AS pages, sum(times_seen) AS seen"
                         " FROM link_lists GROUP BY block ORDER BY block").fetchall()
    assert [(r["block"], r["n"], r["pages"], r["seen"]) for r in lists] == [
        ("related", 5, 5, 5), ("side", 2, 10, 10), ("trending", 1, 5, 5)]
    assert one(conn, "SELECT count(*) AS n FROM link_targets")["n"] == 5 * 4 + 8 + 5
    assert one(conn, "SELECT count(*) AS n FROM link_sightings")["n"] == 5 * 4
    assert one(conn, "SELECT count(*) AS n FROM article_links")["n"] == 5 * (4 + 8 + 5)


def test_trending_history_spans_and_trending_now(conn: Connection[DictRow]) -> None:
    # Version 0, then version 1 (one link left, one came in); at minute 60 a cached page still shows
    # version 0: a sighting of the old list, not a new span.
    plan = [(0, 0), (10, 0), (30, 1), (45, 1), (60, 0), (80, 1)]
    for i, (minute, version) in enumerate(plan):
        store_article(conn, page(i, trending(version)), source_tid="T1536566896022", content_hash=f"h{i}",
                      fetched_at=T0 + timedelta(minutes=minute))
    rows = conn.execute("SELECT * FROM trending_history ORDER BY target_url, started_at").fetchall()
    by_url: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_url.setdefault(r["target_url"], []).append(r)
    left = by_url[article_url(100)]  # only in version 0
    assert [(r["started_at"], r["ended_at"], r["pages"], r["lists"]) for r in left] == [
        (T0, T0 + timedelta(minutes=60), 3, 1)]
    stayed = by_url[article_url(101)]  # in both, moved from 2 to 1
    assert [(r["started_at"], r["ended_at"], sorted(r["positions"]), r["pages"]) for r in stayed] == [
        (T0, T0 + timedelta(minutes=80), [1, 2], 6)]
    assert stayed[0]["duration"] == timedelta(minutes=80) and stayed[0]["best_position"] == 1
    came = by_url[article_url(108)]
    assert [(r["started_at"], r["ended_at"], r["positions"]) for r in came] == [
        (T0 + timedelta(minutes=30), T0 + timedelta(minutes=80), [8])]
    assert came[0]["title"] == "热点新闻108" and came[0]["target_docid"] == docid(108)
    now = conn.execute("SELECT * FROM trending_now").fetchall()
    assert [r["target_url"] for r in now] == [x.url for x in trending(1)]
    assert [r["position"] for r in now] == list(range(1, 9))
    assert now[0]["pages"] == 3


def test_trending_history_splits_when_a_link_leaves_and_returns(conn: Connection[DictRow]) -> None:
    back = [LinkRecord("trending", 1, article_url(100), title="热点新闻100", docid=docid(100)),
            *[LinkRecord("trending", pos, article_url(500 + pos)) for pos in range(2, 9)]]
    for i, links in enumerate([trending(0), trending(1), back]):
        store_article(conn, page(i, links), source_tid="T1536566896022", content_hash=f"h{i}",
                      fetched_at=T0 + timedelta(minutes=10 * i))
    spans = conn.execute("SELECT started_at, ended_at, positions FROM trending_history WHERE target_url = %s"
                         " ORDER BY started_at", (article_url(100),)).fetchall()
    assert [(s["started_at"], s["ended_at"], s["positions"]) for s in spans] == [
        (T0, T0, [1]), (T0 + timedelta(minutes=20), T0 + timedelta(minutes=20), [1])]


def test_partitions_created_ahead_and_default_rows_moved(conn: Connection[DictRow]) -> None:
    far = datetime(2031, 5, 3, tzinfo=UTC)
    store_article(conn, page(1, trending(0)), source_tid="T1536566896022", content_hash="h", fetched_at=far)
    where = one(conn, "SELECT tableoid::regclass::text AS p FROM link_sightings")["p"]
    assert where == "link_sightings_default"
    created = one(conn, "SELECT haowatch_ensure_partitions(%s) AS n", (far,))["n"]
    assert created > 0
    where = one(conn, "SELECT tableoid::regclass::text AS p FROM link_sightings")["p"]
    assert where == "link_sightings_2031_05"
    assert one(conn, "SELECT count(*) AS n FROM article_links")["n"] == 8


@pytest.mark.parametrize("table", ["link_sightings", "article_revisions", "account_snapshots"])
def test_growing_tables_are_partitioned_by_month(conn: Connection[DictRow], table: str) -> None:
    row = one(conn, "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = %s::regclass",
                       (table,))
    assert row and row["partstrat"] == "r"
    month = datetime.now(UTC).strftime("%Y_%m")
    assert one(conn, "SELECT to_regclass(%s) IS NOT NULL AS ok", (f"{table}_{month}",))["ok"]


def test_concurrent_stores_sharing_lists_neither_deadlock_nor_lose_counts(db_url: str) -> None:
    import concurrent.futures

    def worker(offset: int) -> None:
        with connect(db_url) as c:
            for i in range(20):
                n = offset + i
                # Reversed module order in one worker: the lists' rows are still locked in id order.
                links = [*trending(0), *side(0)] if offset else [*reversed(side(0)), *trending(0)]
                store_article(c, page(n, links), source_tid="T1536566896022", content_hash=f"h{n}",
                              fetched_at=T0 + timedelta(seconds=i))

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(worker, [0, 1000, 2000]))
    with connect(db_url) as c:
        rows = c.execute("SELECT block, module, times_seen, pages FROM link_lists ORDER BY block, module").fetchall()
        assert [(r["block"], r["times_seen"], r["pages"]) for r in rows] == [
            ("side", 60, 60), ("side", 60, 60), ("trending", 60, 60)]


TRENDING_DUMPS = [
    "SELECT * FROM trending_links",
    "SELECT * FROM trending_history",
    "SELECT * FROM trending_now",
]


def test_kept_trending_tables_equal_a_rebuild_from_the_lists(conn: Connection[DictRow]) -> None:
    # Stores in time order, a cached older list seen again, a link leaving and coming back, the same
    # fetch stored twice, revisits: what the store path kept equals recomputing from the sightings.
    for n, at, links in fetches():
        store_article(conn, page(n, links), source_tid="T1536566896022", content_hash="h", fetched_at=at)
    back = [LinkRecord("trending", 1, article_url(100), title="热点新闻100", docid=docid(100)),
            *[LinkRecord("trending", pos, article_url(500 + pos)) for pos in range(2, 9)]]
    later = T0 + timedelta(hours=20)
    for i, links in enumerate([trending(0), back, trending(5), back]):
        store_article(conn, page(10 + i, links), source_tid="T1536566896022", content_hash="h",
                      fetched_at=later + timedelta(minutes=i))
    kept = answers(conn, TRENDING_DUMPS + readme_queries())
    assert kept["SELECT * FROM trending_history"] and kept["SELECT * FROM trending_links"]
    conn.execute("SELECT haowatch_rebuild_trending()")
    assert answers(conn, TRENDING_DUMPS + readme_queries()) == kept


def test_migration_009_keeps_every_trending_answer(empty_db_url: str) -> None:
    queries = readme_queries() + LINK_DUMPS + TRENDING_DUMPS
    with connect(empty_db_url) as conn:
        old_database(conn)
        for m in migrate.available_migrations():
            if 5 <= m.version < 9:  # as haowatch before migration 009 would have
                conn.execute(m.sql.encode("utf-8"))
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name))
        assert one(conn, "SELECT max(version) AS v FROM schema_migrations")["v"] < 9
        before = answers(conn, queries)
        assert before["SELECT * FROM trending_history"], "converted 热点推荐 lists"
        applied = migrate.upgrade(conn)
        assert 9 in [m.version for m in applied]
        assert answers(conn, queries) == before
        # Stores after the conversion keep the spans going as a rebuild would compute them.
        store_article(conn, page(4, [*related(4, 1), *trending(5), *side(2)]), source_tid="T1536566896022",
                      content_hash="h", fetched_at=T0 + timedelta(hours=20))
        store_article(conn, page(7, [*trending(6)]), source_tid="T1536566896022", content_hash="h",
                      fetched_at=T0 + timedelta(hours=21))
        kept = answers(conn, TRENDING_DUMPS)
        conn.execute("SELECT haowatch_rebuild_trending()")
        assert answers(conn, TRENDING_DUMPS) == kept


def test_a_new_trending_list_extends_continuing_spans_in_place(conn: Connection[DictRow]) -> None:
    # An update that changes an indexed column writes a new row version elsewhere and leaves a dead one
    # behind for VACUUM; every new list would do that to each continuing span (migration 016).
    for n in range(3):
        store_article(conn, page(n, trending(0)), source_tid="T1536566896022", content_hash="h",
                      fetched_at=T0 + timedelta(minutes=n))
    with conn.transaction():
        store_article(conn, page(3, trending(1)), source_tid="T1536566896022", content_hash="h",
                      fetched_at=T0 + timedelta(minutes=5))
        stats = one(conn, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
                          " WHERE relname = 'trending_spans'")
    # (The counts may include the earlier stores: a backend reports them to the statistics in batches.)
    assert stats is not None and stats["n_tup_upd"] >= 7  # seven links stayed, one is new
    assert stats["n_tup_hot_upd"] == stats["n_tup_upd"]
    spans = conn.execute("SELECT lists FROM trending_history ORDER BY target_url").fetchall()
    assert sorted(r["lists"] for r in spans) == [1, 1, *[2] * 7]


def test_hot_tables_are_vacuumed_where_the_server_does_not(conn: Connection[DictRow]) -> None:
    for n in range(40):
        store_article(conn, page(n, trending(n // 10)), source_tid="T1536566896022", content_hash="h",
                      fetched_at=T0 + timedelta(minutes=n))
    before = one(conn, "SELECT coalesce(max(vacuum_count), 0) AS n FROM pg_stat_user_tables"
                       " WHERE relname = 'trending_totals'")
    assert maintenance.vacuum_hot_tables(conn) is (not maintenance.autovacuum_on(conn))
    if not maintenance.autovacuum_on(conn):
        # The statistics of a VACUUM reach pg_stat_user_tables within a second or so.
        for _ in range(50):
            after = one(conn, "SELECT vacuum_count AS n FROM pg_stat_user_tables WHERE relname = 'trending_totals'")
            if after and before and after["n"] > before["n"]:
                break
            conn.execute("SELECT pg_sleep(0.1), pg_stat_clear_snapshot()")
        else:
            raise AssertionError("trending_totals was not vacuumed")
