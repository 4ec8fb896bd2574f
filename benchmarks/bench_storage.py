"""Storage benchmark: bytes and CPU per stored article, query latency, search recall.

Articles with realistic Chinese text (sentences of the fixture pages shuffled and recombined, plus
sentences generated from their character statistics, so compression behaves as on real pages) and
the links around them as on the real site: 40 related links per article, a 热点推荐 list of 20 that
changes every few minutes (most articles of one hour share it), six sidebar modules (56 links) that
change every half hour to two hours; a tenth of the articles is fetched again a few hours later.

Everything runs in one process against ``TEST_DATABASE_URL`` (a server where it may create databases),
in two databases created for the run and removed after it:

* **baseline**: the schema before migration 005 (``article_links`` one row per link per article),
  the first ``--baseline`` articles stored with the link upsert haowatch used until then;
* **new**: every migration, all ``--articles`` stored through ``db.articles.store_article``.

Reported: database bytes per article in total and by table (both layouts at the same article count,
and the new one at the full count), client and server CPU per stored article, the article's own
compressed text (zlib of title and body) for scale, p50/p95 of every example query of the README
and of ``search_articles`` at the full count, and search recall against ``ILIKE`` on random CJK
substrings of 2–6 characters. ``--scale-to N`` then generates articles and links straight into the
tables up to N articles (copies of the stored ones under new ids and times) and measures the queries
again; ``--scale-search`` also builds the search index at that size (expensive: the tokeniser runs in
SQL once per article). Copies carry the title and body only (no HTML or paragraphs), so bytes per
article at the scaled size understate the stored ones.

    python benchmarks/bench_storage.py --articles 100000 --scale-to 1000000
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import random
import re
import signal
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.extract.types import AccountInfo, ArticlePage, Link  # noqa: E402
from crawler.pipelines import article_record  # noqa: E402
from db import migrate  # noqa: E402
from db.articles import store_article  # noqa: E402
from db.connection import connect  # noqa: E402
from db.maintenance import autovacuum_on, vacuum_hot_tables  # noqa: E402
from scheduler.service import HOT_VACUUM_EVERY_SECONDS  # noqa: E402
from tests.helpers import one  # noqa: E402

START = datetime(2026, 1, 12, tzinfo=UTC)
README_TID = "T1536566896022"
CJK = re.compile(r"[\u4e00-\u9fff]{2,}")

OLD_ARTICLE_SQL = (
    "INSERT INTO articles (docid, source_tid, url, title, published_at, account_name, body_text, body_html,"
    " body_paragraphs, images, ip_location, content_hash, first_seen_at, last_fetched_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '[]', %s, %s, %s, %s)"
    " ON CONFLICT (docid) DO UPDATE SET last_fetched_at = excluded.last_fetched_at, revisits = articles.revisits + 1"
)
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
OLD_SNAPSHOT_SQL = (
    "INSERT INTO account_snapshots (tid, observed_at, name, article_count, follower_count)"
    " SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS ("
    "  SELECT 1 FROM (SELECT * FROM account_snapshots WHERE tid = %s ORDER BY observed_at DESC LIMIT 1) last"
    "  WHERE last.article_count IS NOT DISTINCT FROM %s AND last.observed_at > %s - interval '1 hour')"
)


# --- text ---------------------------------------------------------------------------------------


def fixture_sentences() -> list[str]:
    sentences: list[str] = []
    for path in sorted((ROOT / "tests" / "fixtures" / "article").glob("*/expected.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for para in data.get("body_paragraphs") or []:
            sentences += [s + "。" for s in re.split(r"[。！？]", para) if len(s) >= 6]
    return sentences


class TextMaker:
    """Sentences of the fixtures, recombined, and new sentences from their character bigram statistics."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sentences = fixture_sentences()
        text = "".join(self.sentences)
        self.next: dict[str, list[str]] = {}
        for a, b in itertools.pairwise(text):
            self.next.setdefault(a, []).append(b)
        self.starts = [s[0] for s in self.sentences]

    def generated(self) -> str:
        ch = self.rng.choice(self.starts)
        out = [ch]
        for _ in range(self.rng.randint(12, 60)):
            ch = self.rng.choice(self.next.get(ch) or self.starts)
            if ch in "。！？":
                break
            out.append(ch)
        return "".join(out) + "。"

    def paragraph(self) -> str:
        parts = []
        for _ in range(self.rng.randint(2, 5)):
            parts.append(self.rng.choice(self.sentences) if self.rng.random() < 0.5 else self.generated())
        if self.rng.random() < 0.3:
            r = self.rng.randint
            parts.insert(1, f"{r(2, 99)}日，{r(1, 500)}名记者报道了{r(1, 99)}%的增长。")
        return "".join(parts)

    def article(self) -> tuple[str, list[str]]:
        paragraphs = [self.paragraph() for _ in range(self.rng.randint(6, 16))]
        title = self.generated()[: self.rng.randint(10, 28)].rstrip("。")
        return title, paragraphs


# --- the site's link lists ----------------------------------------------------------------------


DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUV"


def docid_of(n: int) -> str:
    out = ""
    for _ in range(8):
        n, r = divmod(n, 32)
        out = DIGITS[r] + out
    return out + "0514R9KQ"


def url_of(docid: str) -> str:
    return f"https://www.163.com/dy/article/{docid}.html"


@dataclass
class Target:
    docid: str
    title: str
    source: str


SIDE_MODULES = [("热门排行", 10), ("图片新闻", 8), ("视频推荐", 10), ("财经", 10), ("科技", 10), ("娱乐", 8)]


class Site:
    """What the site shows around articles at a given time."""

    def __init__(self, rng: random.Random, text: TextMaker) -> None:
        self.rng = rng
        self.counter = 50_000_000
        self.text = text
        self.evergreen = [self.new_target() for _ in range(5000)]
        self.recent: list[Target] = []
        self.trending = [self.new_target() for _ in range(20)]
        self.modules = {name: [self.new_target() for _ in range(size)] for name, size in SIDE_MODULES}
        self.next_trending = START
        self.next_side = {name: START for name, _ in SIDE_MODULES}

    def new_target(self) -> Target:
        self.counter += 1
        source = self.rng.choice(["网易新闻", "环球网", "澎湃新闻", "新京报"])
        return Target(docid_of(self.counter), self.text.generated()[:20], source)

    def advance(self, now: datetime) -> None:
        while self.next_trending <= now:  # a new 热点推荐 list every few minutes
            if self.rng.random() < 0.6:
                self.trending.pop(self.rng.randrange(len(self.trending)))
                fresh = self.rng.choice(self.recent) if self.recent else self.new_target()
                self.trending.insert(self.rng.randrange(8), fresh)
            else:
                i = self.rng.randrange(19)
                self.trending[i], self.trending[i + 1] = self.trending[i + 1], self.trending[i]
            self.next_trending += timedelta(minutes=self.rng.randint(3, 8))
        for name, size in SIDE_MODULES:
            while self.next_side[name] <= now:
                items = self.modules[name]
                items.pop(self.rng.randrange(size))
                items.insert(0, self.new_target())
                self.next_side[name] += timedelta(minutes=self.rng.randint(30, 120))

    def links(self, own: int) -> list[Link]:
        links: list[Link] = []
        pool = self.recent[-3000:]
        for pos in range(1, 41):
            t = self.rng.choice(pool) if pool and self.rng.random() < 0.6 else self.rng.choice(self.evergreen)
            links.append(Link("related", pos, url_of(t.docid), title=t.title, docid=t.docid, source=t.source))
        for pos, t in enumerate(self.trending, 1):
            links.append(Link("trending", pos, url_of(t.docid), title=t.title, docid=t.docid))
        for name, _ in SIDE_MODULES:
            for pos, t in enumerate(self.modules[name], 1):
                links.append(Link("side", pos, url_of(t.docid), title=t.title, module=name, docid=t.docid))
        return links


@dataclass
class Fetch:
    page: ArticlePage
    at: datetime
    source: str
    first: bool


def fetches(n_articles: int, seed: int) -> Iterator[Fetch]:
    """Article fetches in time order: every article once, a tenth again 1–6 hours later."""
    rng = random.Random(seed)
    text = TextMaker(rng)
    site = Site(rng, text)
    sources = [README_TID] + [f"T{1600000000000 + i}" for i in range(999)]
    per_hour = 250
    refetch: list[tuple[datetime, int, ArticlePage, str]] = []
    at = START
    for n in range(n_articles):
        at += timedelta(seconds=rng.expovariate(per_hour / 3600))
        while refetch and refetch[0][0] <= at:
            when, _, old, source = refetch.pop(0)
            site.advance(when)
            yield Fetch(_with_links(old, site.links(0)), when, source, False)
        site.advance(at)
        title, paragraphs = text.article()
        docid = docid_of(n)
        source = rng.choice(sources)
        page = ArticlePage(
            docid=docid, url=url_of(docid), title=title, published_at=at - timedelta(minutes=rng.randint(1, 90)),
            ip_location=rng.choice(["北京", "上海", "广东", "浙江"]),
            account=AccountInfo(tid=source, name=f"号{source[-4:]}", article_count=n, follower_count=1000),
            body_paragraphs=paragraphs, body_text="\n".join(paragraphs),
            body_html="".join(f"<p>{p}</p>" for p in paragraphs), links=site.links(n),
        )
        site.recent.append(Target(docid, title, f"号{source[-4:]}"))
        yield Fetch(page, at, source, True)
        if rng.random() < 0.1:
            refetch.append((at + timedelta(hours=rng.uniform(1, 6)), n, page, source))
            refetch.sort(key=lambda r: r[0])


def _with_links(page: ArticlePage, links: list[Link]) -> ArticlePage:
    return dataclasses.replace(page, links=links)


# --- measuring ----------------------------------------------------------------------------------


def server_cpu(pid: int) -> float:
    """CPU seconds a server backend used (user + system, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sizes(conn: psycopg.Connection[DictRow]) -> dict[str, int]:
    """Bytes by table, partitions summed into their parent, indexes and TOAST included."""
    rows = conn.execute(
        "SELECT coalesce(p.relname, c.relname) AS name, sum(pg_total_relation_size(c.oid))::bigint AS bytes"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' GROUP BY 1"
    ).fetchall()
    return {r["name"]: r["bytes"] for r in rows if r["bytes"]}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(conn: psycopg.Connection[DictRow], query: str, params: Any = None,
          runs: int = 15) -> tuple[float, float, int]:
    """(p50 ms, p95 ms, rows) of a query, after one warm-up run."""
    rows = len(conn.execute(query, params).fetchall())
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        conn.execute(query, params).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    return pct(times, 0.5), pct(times, 0.95), rows


def readme_queries() -> list[str]:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Database", 1)[1].split("\n## ", 1)[0]
    queries: list[str] = []
    for block in re.findall(r"```sql\n(.*?)```", section, flags=re.S):
        text = "\n".join(line for line in block.splitlines() if not line.strip().startswith("--"))
        queries += [q.strip() for q in text.split(";") if q.strip().upper().startswith("SELECT")]
    return queries


def cjk_queries(conn: psycopg.Connection[DictRow], rng: random.Random, count: int) -> list[str]:
    """Random CJK substrings of 2–6 characters of random stored titles and bodies."""
    bodies = [r["t"] for r in conn.execute(
        "SELECT title || ' ' || body_text AS t FROM articles TABLESAMPLE BERNOULLI (least(100, 200000.0"
        " / greatest(1, (SELECT reltuples FROM pg_class WHERE relname = 'articles')))) LIMIT 2000").fetchall()]
    out: list[str] = []
    while len(out) < count:
        runs = CJK.findall(rng.choice(bodies))
        if not runs:
            continue
        run = rng.choice(runs)
        size = rng.randint(2, 6)
        if len(run) >= size:
            start = rng.randrange(len(run) - size + 1)
            out.append(run[start:start + size])
    return out


def report_queries(conn: psycopg.Connection[DictRow], label: str, rng: random.Random, runs: int,
                   search: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    queries = readme_queries()
    if not search:
        queries = [q for q in queries if "search_" not in q]
    url = one(conn, "SELECT target_url FROM trending_history ORDER BY pages DESC LIMIT 1")
    if url:
        queries.append(queries[next(i for i, q in enumerate(queries) if "target_url =" in q)].replace(
            "https://www.163.com/dy/article/KC12OUHK000189FH.html", url["target_url"]))
    for q in queries:
        p50, p95, n = timed(conn, q, runs=runs)
        out[" ".join(q.split())[:110]] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "rows": n}
        print(f"  [{label}] p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  rows {n:5d}  {' '.join(q.split())[:90]}", flush=True)
    if not search:
        return out
    searches = cjk_queries(conn, rng, 40)
    times, counts = [], []
    for q in searches:
        t = time.perf_counter()
        counts.append(len(conn.execute("SELECT * FROM search_articles(%s)", (q,)).fetchall()))
        times.append((time.perf_counter() - t) * 1000)
    out["search_articles(random 2-6 CJK chars, 50)"] = {
        "p50_ms": round(pct(times, 0.5), 1), "p95_ms": round(pct(times, 0.95), 1), "queries": len(searches)}
    print(f"  [{label}] search_articles p50 {pct(times, 0.5):.1f} ms  p95 {pct(times, 0.95):.1f} ms"
          f"  ({len(searches)} queries)", flush=True)
    return out


def old_queries(conn: psycopg.Connection[DictRow], runs: int) -> dict[str, Any]:
    """The README queries the schema before migration 005 can answer, on the baseline database."""
    out: dict[str, Any] = {}
    for q in readme_queries():
        try:
            p50, p95, n = timed(conn, q, runs=runs)
        except psycopg.errors.Error:
            continue
        out[" ".join(q.split())[:110]] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "rows": n}
        print(f"  [old layout] p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  rows {n:5d}  {' '.join(q.split())[:90]}",
              flush=True)
    return out


def recall(conn: psycopg.Connection[DictRow], rng: random.Random, count: int) -> dict[str, Any]:
    queries = cjk_queries(conn, rng, count)
    missed, extra, total = 0, 0, 0
    for q in queries:
        found = {r["docid"] for r in conn.execute("SELECT docid FROM search_articles(%s, 100000000)", (q,))}
        like = "%" + q + "%"
        expected = {r["docid"] for r in conn.execute(
            "SELECT docid FROM articles WHERE title ILIKE %s OR body_text ILIKE %s", (like, like))}
        total += len(expected)
        missed += len(expected - found)
        extra += len(found - expected)
    return {"queries": len(queries), "ilike_hits": total, "missed": missed, "extra": extra,
            "recall": 1.0 if total == 0 else (total - missed) / total}


# --- phases -------------------------------------------------------------------------------------


def store_old(conn: psycopg.Connection[DictRow], f: Fetch, content_hash: str) -> None:
    p = f.page
    with conn.transaction():
        conn.execute(OLD_ARTICLE_SQL, (p.docid, f.source, p.url, p.title, p.published_at, p.account.name, p.body_text,
                                       p.body_html, json.dumps(p.body_paragraphs, ensure_ascii=False), p.ip_location,
                                       content_hash, f.at, f.at))
        seen: set[tuple[str, str | None, str]] = set()
        unique = []
        for x in p.links:
            if (x.block, x.module, x.url) not in seen:
                seen.add((x.block, x.module, x.url))
                unique.append(x)
        conn.execute(OLD_LINKS_SQL, (
            p.docid, f.at, f.at, [x.block for x in unique], [x.module for x in unique],
            [x.position for x in unique], [x.url for x in unique], [x.docid for x in unique],
            [x.title for x in unique], [x.source for x in unique], [x.published_at for x in unique]))
        conn.execute(OLD_SNAPSHOT_SQL, (f.source, f.at, p.account.name, p.account.article_count,
                                        p.account.follower_count, f.source, p.account.article_count, f.at))


def scale_up(conn: psycopg.Connection[DictRow], target: int, with_search: bool) -> None:
    """Copy stored articles and their link sightings under new ids and later times up to ``target`` articles."""
    have = one(conn, "SELECT count(*) AS n FROM articles")["n"]
    # Only the stored articles (docids starting with 00) are copied, once per round.
    base = one(conn, "SELECT count(*) AS n FROM articles WHERE docid ~ '^00'")["n"]
    span = one(conn, "SELECT max(first_seen_at) - min(first_seen_at) AS s FROM articles")["s"]
    # Bench database only: copying is much faster without the search index, built again after if asked.
    conn.execute("DROP INDEX IF EXISTS articles_search_idx")
    # Each round's copies get docids with their own first two characters (the stored ones start "00").
    used = {r["p"] for r in conn.execute("SELECT DISTINCT left(docid, 2) AS p FROM articles")}
    prefixes = (a + b for a in DIGITS for b in DIGITS if a + b not in used)
    rounds = len(used) - 1  # copies made before
    while have < target:
        rounds += 1
        batch = min(base, target - have)
        shift = span * rounds
        # The site-wide lists seen at the shifted times are new lists (their module marked with the round).
        t = time.perf_counter()
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE list_map ON COMMIT DROP AS SELECT id AS old_id,"
                         " nextval(pg_get_serial_sequence('link_lists', 'id')) AS new_id FROM link_lists"
                         " WHERE block <> 'related' AND id IN (SELECT list_id FROM link_sightings"
                         "  WHERE docid IN (SELECT docid FROM articles ORDER BY first_seen_at LIMIT %s))", (batch,))
            conn.execute("INSERT INTO link_lists (id, block, module, target_ids, positions, first_seen_at,"
                         " last_seen_at, times_seen, pages) OVERRIDING SYSTEM VALUE"
                         " SELECT m.new_id, l.block, coalesce(l.module || ' ', '') || '#' || %s, l.target_ids,"
                         " l.positions, l.first_seen_at + %s, l.last_seen_at + %s, l.times_seen, l.pages"
                         " FROM link_lists l JOIN list_map m ON m.old_id = l.id", (rounds, shift, shift))
            conn.execute(
                "CREATE TEMP TABLE art_map ON COMMIT DROP AS SELECT docid AS old, %s || substr(docid, 3) AS new"
                " FROM (SELECT docid FROM articles WHERE docid ~ '^00' ORDER BY first_seen_at LIMIT %s) s",
                (next(prefixes), batch))
            conn.execute(
                "INSERT INTO articles (docid, source_tid, url, title, published_at, account_name, body_text,"
                " body_html, body_paragraphs, images, ip_location, content_hash, first_seen_at, last_fetched_at)"
                " SELECT m.new, a.source_tid, replace(a.url, m.old, m.new), a.title, a.published_at + %s,"
                " a.account_name, a.body_text, '', '[]', '[]', a.ip_location, md5(m.new), a.first_seen_at + %s,"
                " a.last_fetched_at + %s FROM articles a JOIN art_map m ON m.old = a.docid",
                (shift, shift, shift))
            conn.execute(
                "INSERT INTO link_sightings (docid, list_id, seen_at)"
                " SELECT m.new, coalesce(lm.new_id, s.list_id), s.seen_at + %s FROM link_sightings s"
                " JOIN art_map m ON m.old = s.docid LEFT JOIN list_map lm ON lm.old_id = s.list_id", (shift,))
        have += batch
        print(f"  scaled to {have} articles ({time.perf_counter() - t:.0f} s)", flush=True)
    if with_search:
        t = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("CREATE INDEX articles_search_idx ON articles"
                     " USING gin (haowatch_search_vector(title, body_text))")
        print(f"  search index built ({time.perf_counter() - t:.0f} s)", flush=True)
    t = time.perf_counter()
    conn.execute("SELECT haowatch_rebuild_trending()")  # the copied lists and sightings, as stores keep them
    print(f"  trending tables rebuilt ({time.perf_counter() - t:.0f} s)", flush=True)
    conn.execute("VACUUM ANALYZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=20_000, help="articles stored in the old layout too")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--scale-to", type=int, default=1_000_000, help="0 to skip the generated part")
    parser.add_argument("--scale-search", action="store_true", help="keep the search index while scaling up")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per query")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    admin = os.environ.get("TEST_DATABASE_URL")
    if not admin:
        print("bench_storage: set TEST_DATABASE_URL to a server where the benchmark may create databases",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the databases are removed on the way out
    names = {"old": f"haowatch_bench_old_{os.getpid()}", "new": f"haowatch_bench_new_{os.getpid()}"}
    with psycopg.connect(admin, autocommit=True) as a:
        for name in names.values():
            a.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    results: dict[str, Any] = {"articles": args.articles, "baseline_articles": args.baseline}
    try:
        run(args, {k: make_conninfo(admin, dbname=v) for k, v in names.items()}, results)
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as a:
                for name in names.values():
                    a.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return 0


def per_article(table_bytes: dict[str, int], n: int) -> dict[str, float]:
    return {k: round(v / n) for k, v in sorted(table_bytes.items(), key=lambda kv: -kv[1])}


LINK_TABLES_OLD = {"article_links"}
LINK_TABLES_NEW = {"link_targets", "link_lists", "link_sightings"}


def run(args: argparse.Namespace, urls: dict[str, str], results: dict[str, Any]) -> None:
    rng = random.Random(1)
    with connect(urls["old"]) as old, connect(urls["new"]) as new:
        old.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())")
        for m in migrate.available_migrations():
            if m.version <= 3:
                old.execute(m.sql.encode("utf-8"))
        migrate.upgrade(new)
        new.execute("SELECT haowatch_month_partitions('link_sightings', %s, %s)",
                    (START, START + timedelta(days=400)))
        new.execute("SELECT haowatch_month_partitions('account_snapshots', %s, %s)",
                    (START, START + timedelta(days=400)))
        old_pid = one(old, "SELECT pg_backend_pid() AS p")["p"]
        new_pid = one(new, "SELECT pg_backend_pid() AS p")["p"]
        cpu = {"old_client": 0.0, "old_server": 0.0, "new_client": 0.0, "new_server": 0.0}
        stored = {"old": 0, "new": 0}
        compressed = raw = 0
        t_start = time.perf_counter()
        # As the service does: where the server's autovacuum is off, it vacuums the tables stores rewrite.
        results["server_autovacuum"] = autovacuum_on(new)
        print(f"server autovacuum: {'on' if results['server_autovacuum'] else 'off'}", flush=True)
        vacuumed_at = t_start
        for f in fetches(args.articles, seed=1):
            content_hash = f"{zlib.crc32(f.page.body_text.encode()):08x}"
            if f.first:
                stored["new"] += 1
                body = (f.page.title + "\n" + f.page.body_text).encode("utf-8")
                raw += len(body)
                compressed += len(zlib.compress(body, 6))
            record = article_record(f.page)  # the pipeline's mapping, outside the measured store
            c0, s0 = time.process_time(), server_cpu(new_pid)
            store_article(new, record, source_tid=f.source, content_hash=content_hash, fetched_at=f.at)
            cpu["new_client"] += time.process_time() - c0
            cpu["new_server"] += server_cpu(new_pid) - s0
            if time.perf_counter() - vacuumed_at >= HOT_VACUUM_EVERY_SECONDS:
                c0, s0 = time.process_time(), server_cpu(new_pid)
                if vacuum_hot_tables(new):
                    cpu["new_hot_vacuum"] = cpu.get("new_hot_vacuum", 0.0) + time.process_time() - c0 \
                        + server_cpu(new_pid) - s0
                vacuumed_at = time.perf_counter()
            if stored["new"] <= args.baseline:
                if f.first:
                    stored["old"] += 1
                c0, s0 = time.process_time(), server_cpu(old_pid)
                store_old(old, f, content_hash)
                cpu["old_client"] += time.process_time() - c0
                cpu["old_server"] += server_cpu(old_pid) - s0
                if stored["new"] == args.baseline and f.first:
                    new.execute("VACUUM ANALYZE")
                    old.execute("VACUUM ANALYZE")
                    same_n = {"old": sizes(old), "new": sizes(new),
                              "cpu_ms_per_article": {k: round(v * 1000 / args.baseline, 2) for k, v in cpu.items()}}
                    results["at_baseline"] = same_n
                    print_sizes(same_n, args.baseline, compressed / stored["new"])
                    results["old_queries_at_baseline"] = old_queries(old, args.runs)
                    results["queries_at_baseline"] = report_queries(new, f"{args.baseline}", rng, args.runs)
                    results["recall"] = recall(new, random.Random(2), args.recall_queries)
                    print(f"search recall vs ILIKE at {args.baseline} articles: {results['recall']}", flush=True)
            if stored["new"] % 5000 == 0 and f.first:
                rate = stored["new"] / (time.perf_counter() - t_start)
                print(f"  stored {stored['new']} articles ({rate:.0f}/s)", flush=True)
        new.execute("VACUUM ANALYZE")
        total = sizes(new)
        n = stored["new"]
        results["new_full"] = {"bytes_per_article": per_article(total, n),
                               "total_bytes_per_article": round(sum(total.values()) / n),
                               "link_bytes_per_article": round(sum(v for k, v in total.items()
                                                                   if k in LINK_TABLES_NEW) / n),
                               "compressed_text_per_article": round(compressed / n),
                               "raw_text_per_article": round(raw / n),
                               "cpu_ms_per_article": round((cpu["new_client"] + cpu["new_server"]) * 1000 / n, 2),
                               "hot_vacuum_cpu_ms_per_article": round(cpu.get("new_hot_vacuum", 0.0) * 1000 / n, 3)}
        print(f"new layout at {n} articles: {json.dumps(results['new_full'], ensure_ascii=False)}", flush=True)
        results["queries_at_articles"] = report_queries(new, f"{n}", rng, args.runs)
        if args.scale_to > n:
            scale_up(new, args.scale_to, args.scale_search)
            big = sizes(new)
            results["scaled"] = {"articles": args.scale_to, "bytes_per_article": per_article(big, args.scale_to),
                                 "search_index": args.scale_search}
            print(f"at {args.scale_to} articles, bytes per article:"
                  f" {json.dumps(results['scaled']['bytes_per_article'], ensure_ascii=False)}", flush=True)
            results["queries_scaled"] = report_queries(new, f"{args.scale_to}", rng, args.runs, args.scale_search)


def print_sizes(same_n: dict[str, Any], n: int, compressed: float) -> None:
    old, new = same_n["old"], same_n["new"]
    old_links = sum(v for k, v in old.items() if k in LINK_TABLES_OLD)
    new_links = sum(v for k, v in new.items() if k in LINK_TABLES_NEW)
    print(f"at {n} articles, bytes per article (old layout / new layout):")
    for table in sorted(set(old) | set(new), key=lambda t: -(new.get(t, 0) + old.get(t, 0))):
        print(f"  {table:28s} {old.get(table, 0) / n:10.0f} {new.get(table, 0) / n:10.0f}")
    print(f"  {'links':28s} {old_links / n:10.0f} {new_links / n:10.0f}   ratio new/old {new_links / old_links:.3f}")
    print(f"  {'total':28s} {sum(old.values()) / n:10.0f} {sum(new.values()) / n:10.0f}"
          f"   ratio {sum(new.values()) / sum(old.values()):.3f}")
    print(f"  article's own compressed text (zlib): {compressed:.0f} bytes;"
          f" new total / compressed text = {sum(new.values()) / n / compressed:.2f}")
    print(f"  store CPU ms per article (client+server): {same_n['cpu_ms_per_article']}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
