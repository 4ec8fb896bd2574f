"""Chinese full-text search: recall 1.0 against ILIKE, ranking, snippets, the CLI."""

from __future__ import annotations

import json
import math
import random
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import Connection
from psycopg.rows import DictRow

from db.search import search_articles, search_terms
from tests.helpers import one, run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "article"
T0 = datetime(2026, 1, 22, 4, 0, tzinfo=UTC)
MIXED = [
    ("iPhone 17 Pro发布：售价7999元起", "苹果公司今天发布了iPhone17，ＡＩ功能升级；价格为７９９９元。"),
    ("白俄罗斯与乌克兰边境局势", "据报道，白俄罗斯总统卢卡申科表示……"),
    ("“双十一”销售额破千亿", "天猫、京东等平台的GMV再创新高（同比+12.5%）。100%_真实"),
    ("Ｃｏｖｉｄ-19 latest", "COVID-19 cases rose; 新冠病毒变异株XBB.1.5出现。"),
    ("单字", "中"),
]


def insert(conn: Connection[DictRow], n: int, title: str, body: str, tid: str = "T1536566896022",
           published: datetime = T0) -> str:
    docid = f"K{n:07d}0514R9KQ"
    conn.execute(
        "INSERT INTO articles (docid, source_tid, url, title, body_text, published_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (docid, tid, f"https://www.163.com/dy/article/{docid}.html", title, body, published),
    )
    return docid


def corpus() -> list[tuple[str, str]]:
    texts = []
    for path in sorted(FIXTURES.glob("*/expected.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("body_text"):
            texts.append((data["title"], data["body_text"]))
    return texts + MIXED


@pytest.fixture
def loaded(conn: Connection[DictRow]) -> Connection[DictRow]:
    for n, (title, body) in enumerate(corpus()):
        insert(conn, n, title, body, published=T0 + timedelta(hours=n))
    return conn


def found(conn: Connection[DictRow], query: str) -> set[str]:
    return {h.docid for h in search_articles(conn, query, limit=10_000)}


def ilike(conn: Connection[DictRow], query: str) -> set[str]:
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute("SELECT docid FROM articles WHERE title ILIKE %s OR body_text ILIKE %s",
                        (pattern, pattern)).fetchall()
    return {r["docid"] for r in rows}


def test_recall_on_random_substrings_of_the_fixture_texts(loaded: Connection[DictRow]) -> None:
    rng = random.Random(10)
    texts = [t for pair in corpus() for t in pair]
    for _ in range(300):
        text = rng.choice(texts)
        size = rng.randint(1, 8)
        start = rng.randrange(max(1, len(text) - size))
        query = text[start:start + size].strip()
        if query:
            expected = ilike(loaded, query)
            assert expected <= found(loaded, query), query


@pytest.mark.parametrize("query", [
    "中", "iphone", "IPHONE17", "phone 1", "ai", "７９９９", "7999", "，", "；价格", "%", "100%_", "+12.5%",
    "xbb.1", "“双十一”", "19 l", "covid-19", "边境局势", "卢卡申科表示……", "e 1", "...", "‘不存在’",
])
def test_mixed_scripts_punctuation_and_width(loaded: Connection[DictRow], query: str) -> None:
    assert ilike(loaded, query) <= found(loaded, query)


def test_width_and_case_are_folded(loaded: Connection[DictRow]) -> None:
    assert found(loaded, "ai功能") == found(loaded, "ＡＩ功能") != set()
    assert found(loaded, "covid") == found(loaded, "ＣＯＶＩＤ")
    assert len(found(loaded, "covid")) == 1  # both mentions are in one article


def test_no_false_positives(loaded: Connection[DictRow]) -> None:
    # Every bigram of 局边 occurs nowhere in that order; 境局 and 局势 exist but not 势境.
    assert found(loaded, "势境") == set()
    assert found(loaded, "乌克兰总统卢卡申科") == set()


ALPHABET = "中国白俄罗斯乌克兰的了是在一有人aAbBzZ01９Ｘ，。、 .-%_'\\&|!:*“”"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=ALPHABET, min_size=0, max_size=30), min_size=1, max_size=8),
       query=st.text(alphabet=ALPHABET, min_size=1, max_size=6), pick=st.integers(0, 7))
def test_search_equals_ilike_on_generated_texts(conn: Connection[DictRow], texts: list[str], query: str,
                                                 pick: int) -> None:
    with conn.transaction(force_rollback=True):
        for n, text in enumerate(texts):
            insert(conn, n, text[:5], text)
        for q in (query, texts[pick % len(texts)][1:5]):
            if q.strip():
                assert ilike(conn, q.strip()) <= found(conn, q), q


def test_query_with_a_line_break_does_not_match_across_title_and_body(conn: Connection[DictRow]) -> None:
    apart = insert(conn, 1, "白俄罗斯", "卢卡申科表示")
    inside = insert(conn, 2, "新闻", "据报道，白俄罗斯\n卢卡申科表示")
    wide = insert(conn, 3, "新闻", "据报道，白俄罗斯\nＬｕｋａ")  # found only after normalising
    assert found(conn, "白俄罗斯\n卢卡申科") == ilike(conn, "白俄罗斯\n卢卡申科") == {inside}
    assert found(conn, "白俄罗斯\nluka") == {wide}
    assert apart in found(conn, "白俄罗斯") and apart in found(conn, "卢卡申科")


def test_terms_cover_cjk_latin_and_numbers(conn: Connection[DictRow]) -> None:
    terms = set(search_terms(conn, "iPhone 17手机，ＡＢ"))
    assert {"ip", "ph", "ne", "e", "17", "7手", "手机", "机", "ab", "b"} <= terms
    assert "i" not in terms  # a character followed by another in its run is found through its pair
    assert not {t for t in terms if any(c in t for c in " ，")}


def test_rank_snippet_and_filters(conn: Connection[DictRow]) -> None:
    in_title = insert(conn, 1, "白俄罗斯新闻", "今天天气很好。" * 20)
    in_body = insert(conn, 2, "别的新闻", "前文" * 40 + "提到白俄罗斯的一段话" + "后文" * 40)
    twice = insert(conn, 3, "别的", "白俄罗斯和白俄罗斯", tid="T1536566896023", published=T0 - timedelta(days=3))
    hits = search_articles(conn, "白俄罗斯")
    assert [h.docid for h in hits] == [in_title, twice, in_body]
    assert hits[0].rank > hits[1].rank > hits[2].rank > 0
    assert "<b>白俄罗斯</b>" in hits[2].snippet and hits[2].snippet.startswith("…")
    assert len(hits[2].snippet) < 120
    assert [h.docid for h in search_articles(conn, "白俄罗斯", source_tid="T1536566896023")] == [twice]
    assert twice not in {h.docid for h in search_articles(conn, "白俄罗斯", since=T0 - timedelta(days=1))}
    assert len(search_articles(conn, "白俄罗斯", limit=1)) == 1
    assert search_articles(conn, "   ") == []
    row = one(conn, "SELECT * FROM search_articles('白俄罗斯')")
    assert list(row) == ["docid", "title", "published_at", "source_tid", "rank", "snippet"]


def test_search_uses_the_index(loaded: Connection[DictRow]) -> None:
    loaded.execute("SET enable_seqscan = off")
    plan = loaded.execute(
        "EXPLAIN SELECT docid FROM articles WHERE haowatch_search_vector(title, body_text)"
        " @@ haowatch_search_query('白俄罗斯')").fetchall()
    assert any("articles_search_idx" in str(r) for r in plan)


def test_cli_search(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as raw:
        raw.execute("INSERT INTO articles (docid, source_tid, url, title, body_text, published_at) VALUES"
                    " ('K00000010514R9KQ', 'T1536566896022', 'https://www.163.com/dy/article/K00000010514R9KQ.html',"
                    " '白俄罗斯新闻', '正文提到白俄罗斯', '2026-01-22 12:00+08')")
    out = run_cli("search", "白俄罗斯", db_url=db_url)
    assert out.returncode == 0, out.stderr
    assert "K00000010514R9KQ" in out.stdout and "白俄罗斯新闻" in out.stdout
    out = run_cli("search", "白俄罗斯", "--json", "--source", "T1536566896022", "--since", "2026-01-01",
                  "--limit", "5", db_url=db_url)
    hits = json.loads(out.stdout)
    assert [h["docid"] for h in hits] == ["K00000010514R9KQ"]
    assert set(hits[0]) == {"docid", "title", "published_at", "source_tid", "rank", "snippet"}
    assert json.loads(run_cli("search", "白俄罗斯", "--json", "--since", "2026-02-01", db_url=db_url).stdout) == []
    assert "no article contains" in run_cli("search", "不存在的词", db_url=db_url).stdout


@pytest.mark.parametrize("args", [
    ["search", ""], ["search", "  "], ["search", "x", "--limit", "0"], ["search", "x", "--limit", "abc"],
    ["search", "x", "--limit", "99999999"], ["search", "x", "--since", "yesterday"],
    ["search", "x", "--source", "T123"], ["search"], ["search", "a" * 501],
])
def test_cli_search_bad_input(db_url: str, args: list[str]) -> None:
    out = run_cli(*args, db_url=db_url)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


POOL = 50  # search_articles ranks the newest 50 matches (or lim, if more)


def expected_top(conn: Connection[DictRow], query: str, lim: int, since: datetime | None = None) -> list[str]:
    """The documented order, computed in Python: the newest max(lim, 50) matches (undated ones last),
    then by rank."""
    rows = conn.execute("SELECT docid, title, body_text, published_at FROM articles").fetchall()
    hits = [r for r in rows
            if any(query in unicodedata.normalize("NFKC", r[c] or "").lower() for c in ("title", "body_text"))
            and (since is None or (r["published_at"] is not None and r["published_at"] >= since))]

    def newest(r: DictRow) -> tuple[bool, datetime]:
        return r["published_at"] is not None, r["published_at"] or datetime.min.replace(tzinfo=UTC)

    hits.sort(key=lambda r: r["docid"])
    hits.sort(key=newest, reverse=True)
    pool = hits[:max(lim, POOL)]

    def rank(r: DictRow) -> float:
        t, b = (r["title"] or "").count(query), (r["body_text"] or "").count(query)
        return float(3 * t + b + (t + b == 0)) / (1 + math.log(1 + len(r["body_text"] or "") / 500.0))

    scored = sorted(pool, key=lambda r: r["docid"])
    scored.sort(key=newest, reverse=True)
    scored.sort(key=lambda r: round(rank(r), 4), reverse=True)
    return [r["docid"] for r in scored[:lim]]


@pytest.fixture
def many(conn: Connection[DictRow]) -> Connection[DictRow]:
    """3,000 articles: 白俄罗斯 in most of them (found walking newest first), 卢卡申科 in one in 150
    (found through the index), a width variant of 人民 (⼈民, Kangxi radical) in a few new ones."""
    rng = random.Random(7)
    filler = "今天的天气很好，市场平稳运行。"
    rows = []
    for n in range(3000):
        parts = [filler * rng.randint(1, 6)]
        if rng.random() < 0.7:
            parts.append("白俄罗斯" * rng.randint(1, 3))
        if n % 150 == 0:
            parts.append("卢卡申科表示")
        parts.append("⼈民日报" if n % 997 == 0 else "人民日报" if n % 5 == 0 else "")
        rng.shuffle(parts)
        docid = f"K{n:07d}0514R9KQ"
        rows.append((docid, "T1536566896022", f"https://www.163.com/dy/article/{docid}.html",
                     "白俄罗斯快讯" if n % 40 == 0 else f"新闻{n}", "".join(parts),
                     T0 - timedelta(minutes=rng.randint(0, 100_000))))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO articles (docid, source_tid, url, title, body_text, published_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s)", rows)
    conn.execute("ANALYZE articles")
    return conn


@pytest.mark.parametrize("query", ["白俄罗斯", "卢卡申科", "人民日报", "人民"])
@pytest.mark.parametrize("lim", [1, 20, 50, 120])
def test_lim_returns_the_best_ranked_of_the_newest_matches(many: Connection[DictRow], query: str,
                                                          lim: int) -> None:
    hits = search_articles(many, query, limit=lim)
    contain = ilike(many, query) | ilike(many, query.replace("人", "⼈"))
    assert len(hits) == min(lim, len(contain))  # N hits whenever N articles contain it
    assert {h.docid for h in hits} <= contain
    assert [h.docid for h in hits] == expected_top(many, query, lim)
    ranks = [h.rank for h in hits]
    assert ranks == sorted(ranks, reverse=True)


def test_every_match_is_found_with_a_large_lim(many: Connection[DictRow]) -> None:
    for query in ("白俄罗斯", "卢卡申科", "人民日报", "⼈民", "天气很好"):
        plain = query.replace("⼈", "人")
        assert found(many, query) == ilike(many, plain) | ilike(many, plain.replace("人", "⼈")), query


def test_width_variant_newer_than_plain_matches_is_found(conn: Connection[DictRow]) -> None:
    for n in range(120):
        insert(conn, n, f"新闻{n}", "人民日报报道", published=T0 - timedelta(hours=n + 1))
    variant = insert(conn, 500, "新闻", "⼈民日报报道", published=T0)  # the newest, only after NFKC
    hits = search_articles(conn, "人民日报", limit=50)
    assert variant in {h.docid for h in hits} and len(hits) == 50


def spread_out(conn: Connection[DictRow], seed: int, extras: bool = False) -> None:
    """The newest 250 articles within a minute (two hold 卢卡申科), 2,000 over the ten hours before (one
    in 20), 500 over the year before (one in ten); with ``extras`` also 40 matches sharing one time,
    20 undated ones, 390 from two years ago (one in three), and one match in seven written with a
    variant of 申 (🈸, found only after normalising)."""
    rng = random.Random(seed)
    rows = []
    for n in range(3200 if extras else 2750):
        if n < 250:
            at, has = T0 - timedelta(seconds=n / 5), n in (10, 200)
        elif n < 2250:
            at, has = T0 - timedelta(minutes=rng.uniform(81, 600)), n % 20 == 0
        elif n < 2750:
            at, has = T0 - timedelta(days=rng.uniform(1, 365)), n % 10 == 0
        elif n < 2790:
            at, has = T0 - timedelta(hours=30), True
        elif n < 2810:
            at, has = None, True
        else:
            at, has = T0 - timedelta(days=rng.uniform(400, 700)), n % 3 == 0
        phrase = "卢卡🈸科表示" if extras and has and n % 7 == 3 else "卢卡申科表示"
        body = "今天的天气很好。" * rng.randint(1, 4) + (phrase if has else "卢卡和申科")
        docid = f"K{n:07d}0514R9KQ"
        rows.append((docid, "T1536566896022", f"https://www.163.com/dy/article/{docid}.html", f"新闻{n}", body, at))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO articles (docid, source_tid, url, title, body_text, published_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s)", rows)
    conn.execute("ANALYZE articles")


def test_rare_phrase_found_through_widening_windows_of_newest_articles(conn: Connection[DictRow]) -> None:
    # Walking the newest 250 finds the phrase twice and gives up; the index is asked for the newest
    # 80 minutes (2 matches: too few), then for windows further back.
    spread_out(conn, 3)
    for lim in (20, 50, 200):
        hits = search_articles(conn, "卢卡申科", limit=lim)
        assert [h.docid for h in hits] == expected_top(conn, "卢卡申科", lim), lim
    assert len(found(conn, "卢卡申科")) == 2 + 100 + 50


def test_windows_of_time_keep_every_match_in_order(conn: Connection[DictRow]) -> None:
    # Plus matches sharing one time, undated ones (after every dated one), variants and a `since`
    # inside the windows: the windows are disjoint, each asked only for the matches still missing.
    spread_out(conn, 5, extras=True)
    assert ilike(conn, "卢卡🈸科")
    assert found(conn, "卢卡申科") == ilike(conn, "卢卡申科") | ilike(conn, "卢卡🈸科")
    for lim in (20, 50, 130, 160, 200, 400):
        hits = search_articles(conn, "卢卡申科", limit=lim)
        assert [h.docid for h in hits] == expected_top(conn, "卢卡申科", lim), lim
    for since in (T0 - timedelta(hours=3), T0 - timedelta(days=100), T0 - timedelta(days=500)):
        for lim in (50, 300):
            hits = search_articles(conn, "卢卡申科", limit=lim, since=since)
            assert [h.docid for h in hits] == expected_top(conn, "卢卡申科", lim, since), (since, lim)


def test_the_largest_lim_is_accepted(loaded: Connection[DictRow]) -> None:
    assert found(loaded, "白俄罗斯") == {h.docid for h in search_articles(loaded, "白俄罗斯", limit=2**31 - 1)}
