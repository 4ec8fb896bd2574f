"""SQL for articles, their revisions and links, listed items and account snapshots.

Each public function that writes is one unit of work in one transaction: an article is stored with
its links and account snapshot, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from db.records import ArticleRecord, LinkRecord, ListedRecord

StoreOutcome = Literal["new", "duplicate", "updated", "unchanged", "restored"]


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing one fetched article did."""

    outcome: StoreOutcome
    revision: int
    duplicate_of: str | None = None


_ARTICLE_FIELDS = (
    "source_tid, url, title, published_at, account_name, body_text, body_html, body_paragraphs, images,"
    " ip_location, author_statement, content_hash"
)


def _article_values(page: ArticleRecord, source_tid: str | None, content_hash: str) -> tuple[Any, ...]:
    return (
        source_tid or page.account.tid,
        page.url,
        page.title,
        page.published_at,
        page.account.name,
        page.body_text,
        page.body_html,
        Jsonb(page.body_paragraphs),
        Jsonb(page.images),
        page.ip_location,
        page.author_statement,
        content_hash,
    )


def store_article(
    conn: Connection[DictRow],
    page: ArticleRecord,
    *,
    source_tid: str | None,
    content_hash: str,
    fetched_at: datetime,
    revisit_ages: Sequence[int] = (),
    fetched_url: str | None = None,
) -> StoreResult:
    """Store a fetched article with its links and an account snapshot, in one transaction.

    A new article is inserted (marked ``duplicate_of`` an earlier article with the same body); a
    known one whose title or body changed keeps its previous version in ``article_revisions``;
    an unchanged one only records that it was seen. ``revisit_ages`` (seconds after first seen)
    set the article's next revisit; ``fetched_url`` is where the page actually came from.
    """
    with conn.transaction():
        existing = conn.execute(
            "SELECT docid, source_tid, title, content_hash, revision, deleted_at, last_fetched_at, first_seen_at,"
            " body_text,"
            " body_html, images FROM articles WHERE docid = %s FOR UPDATE",
            (page.docid,),
        ).fetchone()
        first_seen = existing["first_seen_at"] if existing else fetched_at
        next_revisit_at = next_revisit(first_seen, fetched_at, revisit_ages)
        if existing is None:
            result = _insert_article(conn, page, source_tid, content_hash, fetched_at, next_revisit_at)
        else:
            result = _update_article(conn, existing, page, source_tid, content_hash, fetched_at, next_revisit_at)
        if fetched_url is not None:
            conn.execute("UPDATE articles SET fetched_url = %s WHERE docid = %s", (fetched_url, page.docid))
        _store_links(conn, page.docid, page.links, fetched_at)
        if page.account.tid:
            _snapshot(conn, page.account.tid, page.account.name, page.account.article_count,
                      page.account.follower_count, fetched_at)
        conn.execute(
            "UPDATE listed_items SET last_fetch_error = NULL, pending = false, claimed_by = NULL"
            " WHERE item_id = %s AND (pending OR last_fetch_error IS NOT NULL OR claimed_by IS NOT NULL)",
            (page.docid,),
        )
    return result


def next_revisit(first_seen: datetime, now: datetime, ages: Sequence[int]) -> datetime | None:
    """The first of ``first_seen + age`` still in the future, or None when every revisit is done."""
    future = [first_seen + timedelta(seconds=age) for age in ages if first_seen + timedelta(seconds=age) > now]
    return min(future) if future else None


def _insert_article(conn: Connection[DictRow], page: ArticleRecord, source_tid: str | None, content_hash: str,
                    fetched_at: datetime, next_revisit_at: datetime | None) -> StoreResult:
    original = conn.execute(
        "SELECT docid FROM articles WHERE content_hash = %s AND docid <> %s AND deleted_at IS NULL"
        " ORDER BY coalesce(duplicate_of, docid) = docid DESC, first_seen_at LIMIT 1",
        (content_hash, page.docid),
    ).fetchone()
    duplicate_of = original["docid"] if original else None
    conn.execute(
        f"INSERT INTO articles (docid, {_ARTICLE_FIELDS}, duplicate_of, first_seen_at, last_fetched_at,"
        " next_revisit_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (page.docid, *_article_values(page, source_tid, content_hash), duplicate_of, fetched_at, fetched_at,
         next_revisit_at),
    )
    return StoreResult("duplicate" if duplicate_of else "new", 1, duplicate_of)


def _update_article(conn: Connection[DictRow], existing: DictRow, page: ArticleRecord,
                    source_tid: str | None, content_hash: str, fetched_at: datetime,
                    next_revisit_at: datetime | None) -> StoreResult:
    changed = existing["content_hash"] != content_hash or (existing["title"] or "") != page.title
    if existing["content_hash"] is None:
        # A row written for a gone article (no body ever seen) gets its first real content now.
        changed = False
    restored = existing["deleted_at"] is not None
    revision = existing["revision"]
    if changed:
        conn.execute(
            "INSERT INTO article_revisions (docid, revision, fetched_at, replaced_at, title, body_text, body_html,"
            " images, content_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (existing["docid"], revision, existing["last_fetched_at"] or existing["first_seen_at"], fetched_at,
             existing["title"], existing["body_text"], existing["body_html"], Jsonb(existing["images"]),
             existing["content_hash"]),
        )
        revision += 1
    conn.execute(
        f"UPDATE articles SET ({_ARTICLE_FIELDS}) = (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s),"
        " revision = %s, last_fetched_at = %s, deleted_at = NULL, next_revisit_at = %s,"
        " revisits = revisits + 1,"
        " last_changed_at = CASE WHEN %s THEN %s ELSE last_changed_at END"
        " WHERE docid = %s",
        (*_article_values(page, source_tid or existing["source_tid"], content_hash), revision, fetched_at,
         next_revisit_at, changed, fetched_at, existing["docid"]),
    )
    outcome: StoreOutcome = "updated" if changed else ("restored" if restored else "unchanged")
    return StoreResult(outcome, revision)


def _store_links(conn: Connection[DictRow], docid: str, links: Sequence[LinkRecord], seen_at: datetime) -> None:
    """Record the lists of links the page showed: targets and lists stored once, one sighting per list.

    Three statements whatever the number of links: upsert the targets, upsert the lists (content
    hashed in SQL), then insert the sightings and bump the lists' counters.
    """
    if not links:
        return
    unique = _unique_links(links)
    target_ids = _target_ids(conn, unique)
    lists: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    for link, target_id in zip(unique, target_ids, strict=True):
        lists.setdefault((link.block, link.module), []).append((link.position, target_id))
    for entries in lists.values():
        entries.sort()
    list_ids = _list_ids(conn, lists, seen_at)
    trending = _record_sightings(conn, docid, list_ids, seen_at)
    if trending:
        _record_trending(conn, docid, trending, seen_at)


_UPSERT_TARGETS = (
    "WITH input AS ("
    "  SELECT i.*, haowatch_link_key(i.url, i.docid, i.title, i.source_name, i.shown_at) AS key"
    "  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])"
    "  WITH ORDINALITY AS i(url, docid, title, source_name, shown_at, n)),"
    " ins AS ("
    "  INSERT INTO link_targets (url, docid, title, source_name, shown_at)"
    "  SELECT DISTINCT ON (key) url, docid, title, source_name, shown_at FROM input i"
    "  WHERE NOT EXISTS (SELECT 1 FROM link_targets t WHERE t.key = i.key OFFSET 0)"
    "  ORDER BY key ON CONFLICT (key) DO NOTHING RETURNING id, key)"
    " SELECT i.n, coalesce(ins.id, t.id) AS id FROM input i"
    " LEFT JOIN ins ON ins.key = i.key"
    " LEFT JOIN LATERAL (SELECT t.id FROM link_targets t WHERE t.key = i.key OFFSET 0) t ON true ORDER BY i.n"
)


def _target_ids(conn: Connection[DictRow], links: Sequence[LinkRecord]) -> list[int]:
    params = (
        [link.url for link in links], [link.docid for link in links], [link.title for link in links],
        [link.source for link in links], [link.published_at for link in links],
    )
    ids = [row["id"] for row in conn.execute(_UPSERT_TARGETS, params).fetchall()]
    if None in ids:
        # Another transaction inserted one of these targets after this statement's snapshot was taken;
        # it has committed by now (the insert waited for it), so a second pass sees it.
        ids = [row["id"] for row in conn.execute(_UPSERT_TARGETS, params).fetchall()]
    return ids


_UPSERT_LISTS = (
    "WITH input AS ("
    "  SELECT i.block, i.module, i.target_ids::bigint[] AS target_ids, i.positions::integer[] AS positions, i.n,"
    "  haowatch_list_key(i.block, i.module, i.target_ids::bigint[], i.positions::integer[]) AS key"
    "  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY"
    "  AS i(block, module, target_ids, positions, n)),"
    " ins AS ("
    "  INSERT INTO link_lists (block, module, target_ids, positions, first_seen_at, last_seen_at, times_seen, pages)"
    "  SELECT block, module, target_ids, positions, %s, %s, 1, 1 FROM input i"
    "  WHERE NOT EXISTS (SELECT 1 FROM link_lists l WHERE l.key = i.key OFFSET 0)"
    "  ORDER BY key ON CONFLICT (key) DO NOTHING RETURNING id, key)"
    " SELECT i.n, coalesce(ins.id, l.id) AS id, ins.id IS NOT NULL AS inserted FROM input i"
    " LEFT JOIN ins ON ins.key = i.key"
    " LEFT JOIN LATERAL (SELECT l.id FROM link_lists l WHERE l.key = i.key OFFSET 0) l ON true ORDER BY i.n"
)


def _list_ids(conn: Connection[DictRow], lists: dict[tuple[str, str | None], list[tuple[int, int]]],
              seen_at: datetime) -> list[tuple[int, bool]]:
    """(id, inserted now) of each list; a list inserted now already counts this sighting."""
    keys = list(lists)
    params = (
        [block for block, _ in keys], [module for _, module in keys],
        ["{" + ",".join(str(target) for _, target in lists[key]) + "}" for key in keys],
        ["{" + ",".join(str(position) for position, _ in lists[key]) + "}" for key in keys],
        seen_at, seen_at,
    )
    rows = conn.execute(_UPSERT_LISTS, params).fetchall()
    result = [(row["id"], bool(row["inserted"])) for row in rows]
    if any(list_id is None for list_id, _ in result):
        again = conn.execute(_UPSERT_LISTS, params).fetchall()
        result = [(first if first is not None else row["id"], inserted or bool(row["inserted"]))
                  for (first, inserted), row in zip(result, again, strict=True)]
    return result


def _record_sightings(conn: Connection[DictRow], docid: str, lists: Sequence[tuple[int, bool]],
                      seen_at: datetime) -> list[tuple[int, bool, bool]]:
    """Insert the sightings and bump the lists' counters; return the 热点推荐 lists newly sighted.

    Each returned entry is (list id, inserted by this store, first time this article showed it).
    """
    # A sighting already recorded at this time (the same fetch stored twice) changes nothing. Lists
    # inserted by this store already count it; the others' rows are locked in id order, so
    # concurrent stores sharing the same site-wide lists never deadlock.
    rows = conn.execute(
        "WITH s AS MATERIALIZED ("
        "  SELECT l.id, l.fresh, NOT EXISTS (SELECT 1 FROM link_sightings x WHERE x.docid = %(docid)s"
        "  AND x.list_id = l.id) AS new_page FROM unnest(%(ids)s::bigint[], %(fresh)s::boolean[]) AS l(id, fresh)),"
        " ins AS (INSERT INTO link_sightings (docid, list_id, seen_at) SELECT %(docid)s, id, %(seen)s FROM s"
        "  ON CONFLICT DO NOTHING RETURNING list_id),"
        " locked AS MATERIALIZED (SELECT l.id FROM link_lists l WHERE l.id IN (SELECT list_id FROM ins)"
        "  AND l.id IN (SELECT id FROM s WHERE NOT fresh) ORDER BY l.id FOR UPDATE),"
        " bumped AS (UPDATE link_lists l SET times_seen = l.times_seen + 1, pages = l.pages + s.new_page::int,"
        "  first_seen_at = least(l.first_seen_at, %(seen)s), last_seen_at = greatest(l.last_seen_at, %(seen)s)"
        "  FROM locked JOIN s ON s.id = locked.id WHERE l.id = locked.id RETURNING l.id)"
        " SELECT s.id, s.fresh, s.new_page FROM s JOIN ins ON ins.list_id = s.id"
        # Each sighted list by id: a join let the planner read every 热点推荐 list ever stored.
        " CROSS JOIN LATERAL (SELECT l.block FROM link_lists l WHERE l.id = s.id OFFSET 0) l"
        " WHERE l.block = 'trending' ORDER BY s.id",
        {"docid": docid, "ids": [list_id for list_id, _ in lists], "fresh": [fresh for _, fresh in lists],
         "seen": seen_at},
    ).fetchall()
    return [(row["id"], bool(row["fresh"]), bool(row["new_page"])) for row in rows]


# Targets are looked up one by one by id (OFFSET 0 keeps the planner from hashing all of link_targets
# and link_lists, which grows with every article).
# A 热点推荐 list stored for the first time comes last in the order of lists: each of its links either
# continues its span ending at the previous list or starts a new one. Span rows are locked in URL
# order, as every store does, so stores never deadlock on them.
_APPEND_TRENDING_LIST = (
    "WITH o AS (INSERT INTO trending_list_order (list_id, seq)"
    "  SELECT %(list)s, coalesce(max(seq), 0) + 1 FROM trending_list_order RETURNING seq),"
    " e AS MATERIALIZED (SELECT t.url, t.docid, t.title, t.source_name, x.position, o.seq, l.first_seen_at,"
    "  l.last_seen_at, l.pages, l.times_seen FROM link_lists l CROSS JOIN o"
    "  CROSS JOIN LATERAL unnest(l.target_ids, l.positions) AS x(target_id, position)"
    "  CROSS JOIN LATERAL (SELECT t.url, t.docid, t.title, t.source_name FROM link_targets t"
    "  WHERE t.id = x.target_id OFFSET 0) t"
    "  WHERE l.id = %(list)s),"
    " lk AS MATERIALIZED (SELECT p.id FROM trending_spans p JOIN e ON p.target_url = e.url"
    "  AND p.last_seq = e.seq - 1 ORDER BY p.target_url FOR UPDATE OF p),"
    " ext AS (UPDATE trending_spans p SET last_seq = e.seq, lists = p.lists + 1,"
    "  positions = ARRAY(SELECT DISTINCT u FROM unnest(p.positions || e.position) AS u ORDER BY u),"
    "  best_position = least(p.best_position, e.position), target_docid = e.docid, title = e.title,"
    "  source_name = e.source_name, started_at = least(p.started_at, e.first_seen_at),"
    "  ended_at = greatest(p.ended_at, e.last_seen_at), pages = p.pages + e.pages,"
    "  times_seen = p.times_seen + e.times_seen"
    "  FROM e WHERE p.id IN (SELECT id FROM lk) AND p.target_url = e.url RETURNING p.target_url)"
    " INSERT INTO trending_spans (target_url, first_seq, last_seq, target_docid, title, source_name, started_at,"
    "  ended_at, positions, best_position, lists, pages, times_seen)"
    " SELECT e.url, e.seq, e.seq, e.docid, e.title, e.source_name, e.first_seen_at, e.last_seen_at,"
    "  ARRAY[e.position], e.position, 1, e.pages, e.times_seen FROM e"
    " WHERE e.url NOT IN (SELECT target_url FROM ext)"
)

# A list seen again: the spans it belongs to count the sighting (as its own counters did).
_SIGHT_TRENDING_LIST = (
    "WITH e AS MATERIALIZED (SELECT t.url, o.seq FROM link_lists l"
    "  JOIN trending_list_order o ON o.list_id = l.id"
    "  CROSS JOIN LATERAL unnest(l.target_ids) AS x(target_id)"
    "  CROSS JOIN LATERAL (SELECT t.url, t.docid, t.title, t.source_name FROM link_targets t"
    "  WHERE t.id = x.target_id OFFSET 0) t"
    "  WHERE l.id = %(list)s),"
    " lk AS MATERIALIZED (SELECT p.id FROM trending_spans p JOIN e ON p.target_url = e.url"
    "  AND p.first_seq <= e.seq AND p.last_seq >= e.seq ORDER BY p.target_url FOR UPDATE OF p)"
    " UPDATE trending_spans p SET times_seen = p.times_seen + 1, pages = p.pages + %(new_page)s::int,"
    "  started_at = least(p.started_at, %(seen)s), ended_at = greatest(p.ended_at, %(seen)s)"
    " WHERE p.id IN (SELECT id FROM lk)"
)

# Per link: on how many articles (a link this article showed in 热点推荐 before counts once), how
# often, first and last seen.
_COUNT_TRENDING_TARGETS = (
    "WITH cur AS (SELECT t.url, max(t.docid) AS docid, max(t.title) AS title, max(t.source_name) AS source_name,"
    "  count(*) AS n FROM link_lists l CROSS JOIN LATERAL unnest(l.target_ids) AS x(target_id)"
    "  CROSS JOIN LATERAL (SELECT t.url, t.docid, t.title, t.source_name FROM link_targets t"
    "  WHERE t.id = x.target_id OFFSET 0) t"
    "  WHERE l.id = ANY(%(ids)s) GROUP BY t.url),"
    " prior AS (SELECT DISTINCT t.url FROM link_sightings s"
    "  CROSS JOIN LATERAL (SELECT l.target_ids FROM link_lists l WHERE l.id = s.list_id AND l.block = 'trending'"
    "  OFFSET 0) l CROSS JOIN LATERAL unnest(l.target_ids) AS x(target_id)"
    "  CROSS JOIN LATERAL (SELECT t.url, t.docid, t.title, t.source_name FROM link_targets t"
    "  WHERE t.id = x.target_id OFFSET 0) t"
    "  WHERE s.docid = %(docid)s AND NOT (s.list_id = ANY(%(ids)s) AND s.seen_at = %(seen)s))"
    " INSERT INTO trending_totals AS g (target_url, target_docid, title, source_name, shown_on_articles,"
    "  times_seen, first_seen_at, last_seen_at)"
    " SELECT c.url, c.docid, c.title, c.source_name, (c.url NOT IN (SELECT url FROM prior))::int, c.n,"
    "  %(seen)s, %(seen)s FROM cur c ORDER BY c.url"
    " ON CONFLICT (target_url) DO UPDATE SET target_docid = greatest(g.target_docid, excluded.target_docid),"
    "  title = greatest(g.title, excluded.title), source_name = greatest(g.source_name, excluded.source_name),"
    "  shown_on_articles = g.shown_on_articles + excluded.shown_on_articles,"
    "  times_seen = g.times_seen + excluded.times_seen, first_seen_at = least(g.first_seen_at, excluded.first_seen_at),"
    "  last_seen_at = greatest(g.last_seen_at, excluded.last_seen_at)"
)


def _record_trending(conn: Connection[DictRow], docid: str, sighted: Sequence[tuple[int, bool, bool]],
                     seen_at: datetime) -> None:
    """Keep trending_spans and trending_totals (read by trending_history and trending_links) current."""
    for list_id, fresh, new_page in sighted:
        if fresh:
            # Lists are numbered one at a time; another store's new list waits for this commit.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('haowatch_trending_order'))")
            conn.execute(_APPEND_TRENDING_LIST, {"list": list_id})
        else:
            conn.execute(_SIGHT_TRENDING_LIST, {"list": list_id, "new_page": new_page, "seen": seen_at})
    conn.execute(_COUNT_TRENDING_TARGETS,
                 {"ids": [list_id for list_id, _, _ in sighted], "docid": docid, "seen": seen_at})


def _unique_links(links: Sequence[LinkRecord]) -> list[LinkRecord]:
    # A page can show the same link twice in one block (e.g. a lead item repeated in its list);
    # one entry per (block, module, url), as article_links has always had.
    seen: set[tuple[str, str | None, str]] = set()
    unique = []
    for link in links:
        key = (link.block, link.module, link.url)
        if key not in seen:
            seen.add(key)
            unique.append(link)
    return unique


def _snapshot(conn: Connection[DictRow], tid: str, name: str | None, article_count: int | None,
              follower_count: int | None, observed_at: datetime) -> None:
    """Record the account's counters when they differ from the latest snapshot (or it is an hour old)."""
    # Articles of one account are stored concurrently; serialise their snapshot check per account.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('haowatch_snapshot:' || %s))", (tid,))
    conn.execute(
        "INSERT INTO account_snapshots (tid, observed_at, name, article_count, follower_count)"
        " SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS ("
        "  SELECT 1 FROM (SELECT * FROM account_snapshots WHERE tid = %s ORDER BY observed_at DESC LIMIT 1) last"
        "  WHERE last.name IS NOT DISTINCT FROM %s AND last.article_count IS NOT DISTINCT FROM %s"
        "  AND last.follower_count IS NOT DISTINCT FROM %s AND last.observed_at > %s - interval '1 hour')",
        (tid, observed_at, name, article_count, follower_count, tid, name, article_count, follower_count,
         observed_at),
    )


def mark_gone(conn: Connection[DictRow], docid: str, *, source_tid: str | None, url: str, title: str | None,
              seen_at: datetime) -> bool:
    """Record that an article's page is gone; return True when it was not already known as deleted."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO articles (docid, source_tid, url, title, first_seen_at, last_fetched_at, deleted_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (docid) DO UPDATE SET deleted_at = coalesce(articles.deleted_at, excluded.deleted_at),"
            " last_fetched_at = excluded.last_fetched_at, next_revisit_at = NULL"
            " RETURNING deleted_at = %s AS newly_deleted",
            (docid, source_tid, url, title, seen_at, seen_at, seen_at, seen_at),
        ).fetchone()
        conn.execute("UPDATE listed_items SET last_fetch_error = 'gone', pending = false, claimed_by = NULL"
                     " WHERE item_id = %s", (docid,))
    return bool(row and row["newly_deleted"])


def record_listing(conn: Connection[DictRow], tid: str, items: Sequence[ListedRecord], seen_at: datetime, *,
                   claimed_by: str | None = None, lease_seconds: int = 60) -> int:
    """Remember every item an account page (or the list API) showed; return how many were new.

    A new article not stored yet becomes *pending*, leased for ``lease_seconds`` to ``claimed_by``
    (the worker whose check listed it fetches it at once); if that fetch never happens, the lease
    runs out and any worker takes it.
    """
    if not items:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO listed_items (item_id, item_type, source_tid, url, title, published_at, thumbnail,"
            " first_listed_at, last_listed_at, pending, claimed_by, fetch_after)"
            " SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            "  %s = 'article' AND NOT EXISTS (SELECT 1 FROM articles WHERE docid = %s), %s,"
            "  now() + make_interval(secs => %s)"
            " ON CONFLICT (item_id) DO UPDATE SET last_listed_at = excluded.last_listed_at,"
            " title = coalesce(excluded.title, listed_items.title),"
            " thumbnail = coalesce(excluded.thumbnail, listed_items.thumbnail)"
            " RETURNING (xmax = 0) AS inserted",
            [
                (item.id, item.item_type, tid, item.url, item.title, item.published_at, item.thumbnail, seen_at,
                 seen_at, item.item_type, item.id, claimed_by, lease_seconds)
                for item in items
            ],
            returning=True,
        )
        inserted = 0
        while True:
            row = cur.fetchone()
            inserted += 1 if row and row["inserted"] else 0
            if not cur.nextset():
                break
    return inserted


def unfetched_docids(conn: Connection[DictRow], tid: str, listed: Sequence[str], max_failures: int) -> list[str]:
    """Which of the listed docids, plus earlier-listed ones never stored, still need fetching.

    Earlier-listed items whose fetch failed are retried on later checks (up to ``max_failures``), so
    a failed page never makes an article silently go missing.
    """
    rows = conn.execute(
        "SELECT d AS docid FROM unnest(%s::text[]) WITH ORDINALITY AS l(d, n)"
        " WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.docid = l.d)"
        " UNION ALL"
        " SELECT li.item_id FROM listed_items li"
        " WHERE li.source_tid = %s AND li.item_type = 'article' AND li.fetch_failures < %s"
        " AND li.item_id <> ALL(%s::text[])"
        " AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.docid = li.item_id)",
        (list(listed), tid, max_failures, list(listed)),
    ).fetchall()
    return [r["docid"] for r in rows]


def record_fetch_failure(conn: Connection[DictRow], docid: str, error: str, *,
                         listed_by: tuple[str, str] | None = None, max_failures: int = 8,
                         retry_seconds: int = 1800, counted: bool = True) -> None:
    """Count a failed fetch of a listed article: it is tried again after ``retry_seconds`` (and on
    later checks of its account) until it has failed ``max_failures`` times.

    With ``listed_by`` (the listing account's T-id and the article's URL) the count holds even if
    the listing that named the article is not stored yet: items are stored concurrently, so a quick
    failure can overtake its listing. The row is created here and the listing, when it lands, keeps
    the count. A failure that is not the article's (a block of the whole site) is not ``counted``:
    it waits like any other but never makes the article be given up.
    """
    after = "now() + make_interval(secs => %(retry)s)"
    values = {"docid": docid, "error": error[:500], "max": max_failures, "retry": retry_seconds,
              "inc": 1 if counted else 0}
    if listed_by is None:
        conn.execute(
            "UPDATE listed_items SET fetch_failures = fetch_failures + %(inc)s, last_fetch_error = %(error)s,"
            f" claimed_by = NULL, fetch_after = {after}, pending = pending AND fetch_failures + %(inc)s < %(max)s"
            " WHERE item_id = %(docid)s",
            values,
        )
        return
    conn.execute(
        "INSERT INTO listed_items (item_id, item_type, source_tid, url, fetch_failures, last_fetch_error,"
        " pending, fetch_after)"
        f" VALUES (%(docid)s, 'article', %(tid)s, %(url)s, %(inc)s, %(error)s, %(inc)s < %(max)s, {after})"
        " ON CONFLICT (item_id) DO UPDATE SET fetch_failures = listed_items.fetch_failures + %(inc)s,"
        " last_fetch_error = excluded.last_fetch_error, claimed_by = NULL, fetch_after = excluded.fetch_after,"
        " pending = (listed_items.pending OR listed_items.fetch_failures = 0)"
        "   AND listed_items.fetch_failures + %(inc)s < %(max)s"
        "   AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.docid = listed_items.item_id)",
        {**values, "tid": listed_by[0], "url": listed_by[1]},
    )


def listed_title(conn: Connection[DictRow], docid: str) -> tuple[str | None, str | None]:
    """(source_tid, title) of a listed item, or of a known article."""
    row = conn.execute(
        "SELECT source_tid, title FROM listed_items WHERE item_id = %s"
        " UNION ALL SELECT source_tid, title FROM articles WHERE docid = %s LIMIT 1",
        (docid, docid),
    ).fetchone()
    return (row["source_tid"], row["title"]) if row else (None, None)


def due_revisits(conn: Connection[DictRow], now: datetime, limit: int) -> list[str]:
    """Live articles whose next revisit time has come, oldest first."""
    rows = conn.execute(
        "SELECT docid FROM articles WHERE next_revisit_at <= %s AND deleted_at IS NULL"
        " ORDER BY next_revisit_at LIMIT %s",
        (now, limit),
    ).fetchall()
    return [r["docid"] for r in rows]
