-- Links stored once, trending history, Chinese full-text search, monthly partitions.
--
-- Before: article_links held one row per link per article (about 116 per article), mostly copies of the
-- same site-wide 热点推荐 and sidebar lists. Now a link target is stored once (link_targets), a list of
-- links is stored once per distinct content (link_lists, also an article's own 相关推荐 list), and each
-- time a page showed a list is one small row (link_sightings, partitioned by month). article_links is a
-- view with the columns of the old table. The old tables are kept, renamed *_pre005, with every row;
-- their rows are also converted into the new tables, so users may remove the *_pre005 tables once checked.

-- ---------------------------------------------------------------------------------------------------
-- Monthly partitions: one helper used for every time-partitioned table.

CREATE FUNCTION haowatch_month_partitions(parent regclass, from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month   timestamptz := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    stop    timestamptz := date_trunc('month', to_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = parent);
    keycol  text := (SELECT a.attname FROM pg_partitioned_table p
                     JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
                     WHERE p.partrelid = parent);
    part    text;
    created integer := 0;
BEGIN
    WHILE month <= stop LOOP
        part := relname || '_' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM');
        IF to_regclass(quote_ident(part)) IS NULL THEN
            -- Rows that landed in the default partition for this month move into the new one first
            -- (moved, never dropped), or attaching would fail.
            EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
            -- Owned like its parent, whichever role happens to create it.
            EXECUTE format('ALTER TABLE %I OWNER TO %I', part,
                           (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = parent));
            EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *)'
                           ' INSERT INTO %I SELECT * FROM moved',
                           relname || '_default', keycol, month, keycol, month + interval '1 month', part);
            EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           parent, part, month, month + interval '1 month');
            created := created + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION haowatch_month_partitions IS
    'create the monthly partitions of a time-partitioned haowatch table from one month to another';

-- ---------------------------------------------------------------------------------------------------
-- Link targets and lists, stored once.

-- Identity of a link target: every shown field. NULL and '' differ (each present value is prefixed).
CREATE FUNCTION haowatch_link_key(url text, docid text, title text, source_name text, shown_at timestamptz)
RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT md5(coalesce('u' || url, '') || chr(31) || coalesce('d' || docid, '') || chr(31)
               || coalesce('t' || title, '') || chr(31) || coalesce('s' || source_name, '') || chr(31)
               || coalesce('a' || extract(epoch FROM shown_at)::text, ''))::uuid
$$;

-- array_to_string is only STABLE in general; for integer arrays its result never changes.
CREATE FUNCTION haowatch_list_key(block text, module text, target_ids bigint[], positions integer[])
RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT md5(block || chr(31) || coalesce('m' || module, '') || chr(31) || array_to_string(target_ids, ',')
               || chr(31) || array_to_string(positions, ','))::uuid
$$;

CREATE TABLE link_targets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url         text NOT NULL,
    docid       text,
    title       text,
    source_name text,
    shown_at    timestamptz,
    key         uuid NOT NULL GENERATED ALWAYS AS (haowatch_link_key(url, docid, title, source_name, shown_at))
                    STORED CONSTRAINT link_targets_key UNIQUE
);
COMMENT ON TABLE link_targets IS 'every distinct link shown around articles (a new row when its title or time changes)';
CREATE INDEX link_targets_url_idx ON link_targets (url);
CREATE INDEX link_targets_docid_idx ON link_targets (docid);

CREATE TABLE link_lists (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    block         text NOT NULL CONSTRAINT link_lists_block CHECK (block IN ('related', 'trending', 'side')),
    module        text,
    target_ids    bigint[] NOT NULL,
    positions     integer[] NOT NULL,
    key           uuid NOT NULL GENERATED ALWAYS AS (haowatch_list_key(block, module, target_ids, positions))
                      STORED CONSTRAINT link_lists_key UNIQUE,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    times_seen    integer NOT NULL DEFAULT 0,
    pages         integer NOT NULL DEFAULT 0,
    CONSTRAINT link_lists_same_length CHECK (cardinality(target_ids) = cardinality(positions))
) WITH (fillfactor = 90);  -- room on each page for the site-wide lists' counter updates (HOT)
COMMENT ON TABLE link_lists IS
    'each distinct list of links (热点推荐, a sidebar module, an article''s 相关推荐), stored once';
COMMENT ON COLUMN link_lists.target_ids IS 'link_targets ids in page order; positions[i] is target_ids[i]''s position';
COMMENT ON COLUMN link_lists.times_seen IS 'how many page fetches showed this list';
COMMENT ON COLUMN link_lists.pages IS 'how many different article pages showed this list';
CREATE INDEX link_lists_block_first_seen_idx ON link_lists (block, first_seen_at DESC);

CREATE TABLE link_sightings (
    docid         text NOT NULL REFERENCES articles (docid),
    list_id       bigint NOT NULL REFERENCES link_lists (id),
    seen_at       timestamptz NOT NULL,
    first_seen_at timestamptz,
    times_seen    integer,
    PRIMARY KEY (docid, list_id, seen_at)
) PARTITION BY RANGE (seen_at);
COMMENT ON TABLE link_sightings IS 'one row each time an article page was fetched showing a list (by month)';
COMMENT ON COLUMN link_sightings.first_seen_at IS
    'only on rows converted from the old article_links: when first seen (NULL means seen_at)';
COMMENT ON COLUMN link_sightings.times_seen IS
    'only on rows converted from the old article_links: fetches summarised by this row (NULL means 1)';
CREATE TABLE link_sightings_default PARTITION OF link_sightings DEFAULT;
CREATE INDEX link_sightings_list_idx ON link_sightings (list_id, seen_at);

-- ---------------------------------------------------------------------------------------------------
-- Convert the old article_links rows. Rows one fetch wrote together (same article, block, module,
-- first and last sighting, count) become one list and one sighting, which reproduces every column.

ALTER TABLE article_links RENAME TO article_links_pre005;
ALTER TABLE article_links_pre005 RENAME CONSTRAINT article_links_unique TO article_links_pre005_unique;
ALTER INDEX article_links_target_docid_idx RENAME TO article_links_pre005_target_docid_idx;
ALTER INDEX article_links_target_url_idx RENAME TO article_links_pre005_target_url_idx;
ALTER INDEX article_links_block_seen_idx RENAME TO article_links_pre005_block_seen_idx;
ALTER INDEX IF EXISTS article_links_title_trgm_idx RENAME TO article_links_pre005_title_trgm_idx;
COMMENT ON TABLE article_links_pre005 IS
    'article_links as stored before migration 005 (converted into link_targets/link_lists/link_sightings)';

INSERT INTO link_targets (url, docid, title, source_name, shown_at)
SELECT DISTINCT ON (k) target_url, target_docid, title, source_name, shown_at
FROM (SELECT *, haowatch_link_key(target_url, target_docid, title, source_name, shown_at) AS k
      FROM article_links_pre005 ORDER BY first_seen_at) old
ORDER BY k, first_seen_at;

CREATE TEMPORARY TABLE haowatch_old_groups ON COMMIT DELETE ROWS AS
SELECT o.docid, o.block, o.module, o.first_seen_at, o.seen_at, o.times_seen,
       array_agg(t.id ORDER BY o.position, o.target_url) AS target_ids,
       array_agg(o.position ORDER BY o.position, o.target_url) AS positions
FROM article_links_pre005 o
JOIN link_targets t ON t.key = haowatch_link_key(o.target_url, o.target_docid, o.title, o.source_name, o.shown_at)
GROUP BY o.docid, o.block, o.module, o.first_seen_at, o.seen_at, o.times_seen;

INSERT INTO link_lists (block, module, target_ids, positions, first_seen_at, last_seen_at, times_seen, pages)
SELECT block, module, target_ids, positions, min(first_seen_at), max(seen_at), sum(times_seen),
       count(DISTINCT docid)
FROM haowatch_old_groups
GROUP BY block, module, target_ids, positions
ORDER BY min(first_seen_at);

SELECT haowatch_month_partitions('link_sightings', coalesce(min(seen_at), now()), now() + interval '2 months')
FROM haowatch_old_groups;

INSERT INTO link_sightings (docid, list_id, seen_at, first_seen_at, times_seen)
SELECT g.docid, l.id, g.seen_at, nullif(g.first_seen_at, g.seen_at), nullif(g.times_seen, 1)
FROM haowatch_old_groups g
JOIN link_lists l ON l.key = haowatch_list_key(g.block, g.module, g.target_ids, g.positions);

CREATE VIEW article_links AS
SELECT s.docid, l.block, l.module,
       (array_agg(e.position ORDER BY s.seen_at DESC))[1] AS position,
       t.url AS target_url,
       (array_agg(t.docid ORDER BY s.seen_at DESC))[1] AS target_docid,
       (array_agg(t.title ORDER BY s.seen_at DESC))[1] AS title,
       (array_agg(t.source_name ORDER BY s.seen_at DESC))[1] AS source_name,
       (array_agg(t.shown_at ORDER BY s.seen_at DESC) FILTER (WHERE t.shown_at IS NOT NULL))[1] AS shown_at,
       min(coalesce(s.first_seen_at, s.seen_at)) AS first_seen_at,
       max(s.seen_at) AS seen_at,
       sum(coalesce(s.times_seen, 1))::integer AS times_seen
FROM link_sightings s
JOIN link_lists l ON l.id = s.list_id
CROSS JOIN LATERAL unnest(l.target_ids, l.positions) AS e(target_id, position)
JOIN link_targets t ON t.id = e.target_id
GROUP BY s.docid, l.block, l.module, t.url;
COMMENT ON VIEW article_links IS
    'links shown around each article, one row per article, block, module and link (as the table before 005)';

-- The old view followed the renamed table; redefined (same columns) on the new article_links.
CREATE OR REPLACE VIEW trending_links AS
SELECT l.target_url, max(l.target_docid) AS target_docid, max(l.title) AS title,
       max(l.source_name) AS source_name, count(DISTINCT l.docid) AS shown_on_articles,
       sum(l.times_seen) AS times_seen, min(l.first_seen_at) AS first_seen_at, max(l.seen_at) AS last_seen_at
FROM article_links l
WHERE l.block = 'trending'
GROUP BY l.target_url
ORDER BY shown_on_articles DESC, last_seen_at DESC;
COMMENT ON VIEW trending_links IS 'links shown under 热点推荐, most-seen first';

-- ---------------------------------------------------------------------------------------------------
-- Trending history. The 热点推荐 lists in the order they first appeared form the time series; a span
-- is a run of consecutive lists that all contain the link. A page still showing an older list (a
-- cached copy) adds sightings to that list and does not break anyone's span.

CREATE VIEW trending_history AS
WITH lists AS (
    SELECT l.*, row_number() OVER (ORDER BY l.first_seen_at, l.id) AS seq
    FROM link_lists l WHERE l.block = 'trending'
), entries AS (
    SELECT t.url, t.docid, t.title, t.source_name, e.position, l.seq, l.first_seen_at, l.last_seen_at,
           l.pages, l.times_seen,
           l.seq - row_number() OVER (PARTITION BY t.url ORDER BY l.seq) AS run
    FROM lists l
    CROSS JOIN LATERAL unnest(l.target_ids, l.positions) AS e(target_id, position)
    JOIN link_targets t ON t.id = e.target_id
)
SELECT url AS target_url,
       (array_agg(docid ORDER BY seq DESC))[1] AS target_docid,
       (array_agg(title ORDER BY seq DESC))[1] AS title,
       (array_agg(source_name ORDER BY seq DESC))[1] AS source_name,
       min(first_seen_at) AS started_at,
       max(last_seen_at) AS ended_at,
       max(last_seen_at) - min(first_seen_at) AS duration,
       array_agg(DISTINCT position) AS positions,
       min(position) AS best_position,
       count(*)::integer AS lists,
       sum(pages)::integer AS pages,
       sum(times_seen)::integer AS times_seen
FROM entries
GROUP BY url, run;
COMMENT ON VIEW trending_history IS
    'each span of time a link stayed in 热点推荐: when, at which positions, on how many article pages';

CREATE VIEW trending_now AS
SELECT e.position, t.url AS target_url, t.docid AS target_docid, t.title, t.source_name,
       l.first_seen_at AS list_first_seen_at, l.last_seen_at AS list_last_seen_at, l.pages, l.id AS list_id
FROM (SELECT * FROM link_lists WHERE block = 'trending' ORDER BY first_seen_at DESC, id DESC LIMIT 1) l
CROSS JOIN LATERAL unnest(l.target_ids, l.positions) AS e(target_id, position)
JOIN link_targets t ON t.id = e.target_id
ORDER BY e.position;
COMMENT ON VIEW trending_now IS 'the newest 热点推荐 list';

-- ---------------------------------------------------------------------------------------------------
-- Revisions and account snapshots grow with time: partitioned by month. Rows move into the new tables;
-- the old tables stay, renamed *_pre005, with their rows.

ALTER TABLE article_revisions RENAME TO article_revisions_pre005;
ALTER INDEX article_revisions_pkey RENAME TO article_revisions_pre005_pkey;
ALTER TABLE article_revisions_pre005 RENAME CONSTRAINT article_revisions_docid_revision_key
    TO article_revisions_pre005_docid_revision_key;
ALTER TABLE article_revisions_pre005 RENAME CONSTRAINT article_revisions_docid_fkey
    TO article_revisions_pre005_docid_fkey;
COMMENT ON TABLE article_revisions_pre005 IS 'article_revisions as stored before migration 005 (rows copied)';

CREATE TABLE article_revisions (
    id           bigint NOT NULL DEFAULT nextval('article_revisions_id_seq'),
    docid        text NOT NULL REFERENCES articles (docid),
    revision     integer NOT NULL,
    fetched_at   timestamptz NOT NULL,
    replaced_at  timestamptz NOT NULL DEFAULT now(),
    title        text,
    body_text    text,
    body_html    text,
    images       jsonb,
    content_hash text,
    PRIMARY KEY (id, replaced_at)
) PARTITION BY RANGE (replaced_at);
COMMENT ON TABLE article_revisions IS 'earlier versions of edited articles (the current one is in articles)';
ALTER SEQUENCE article_revisions_id_seq OWNED BY article_revisions.id;
CREATE TABLE article_revisions_default PARTITION OF article_revisions DEFAULT;
CREATE INDEX article_revisions_docid_idx ON article_revisions (docid, revision);
CREATE INDEX article_revisions_replaced_idx ON article_revisions (replaced_at DESC);
SELECT haowatch_month_partitions('article_revisions', coalesce(min(replaced_at), now()), now() + interval '2 months')
FROM article_revisions_pre005;
INSERT INTO article_revisions SELECT * FROM article_revisions_pre005;

ALTER TABLE account_snapshots RENAME TO account_snapshots_pre005;
ALTER INDEX account_snapshots_pkey RENAME TO account_snapshots_pre005_pkey;
ALTER INDEX account_snapshots_tid_idx RENAME TO account_snapshots_pre005_tid_idx;
COMMENT ON TABLE account_snapshots_pre005 IS 'account_snapshots as stored before migration 005 (rows copied)';

CREATE TABLE account_snapshots (
    id              bigint NOT NULL DEFAULT nextval('account_snapshots_id_seq'),
    tid             text NOT NULL,
    observed_at     timestamptz NOT NULL DEFAULT now(),
    name            text,
    article_count   integer,
    follower_count  integer,
    PRIMARY KEY (id, observed_at)
) PARTITION BY RANGE (observed_at);
ALTER SEQUENCE account_snapshots_id_seq OWNED BY account_snapshots.id;
CREATE TABLE account_snapshots_default PARTITION OF account_snapshots DEFAULT;
CREATE INDEX account_snapshots_tid_idx ON account_snapshots (tid, observed_at DESC);
SELECT haowatch_month_partitions('account_snapshots', coalesce(min(observed_at), now()), now() + interval '2 months')
FROM account_snapshots_pre005;
INSERT INTO account_snapshots SELECT * FROM account_snapshots_pre005;

-- ---------------------------------------------------------------------------------------------------
-- Chinese full-text search without extensions. Text is normalised (NFKC, lower case) and cut at
-- whitespace and punctuation into runs. The terms of a run are its pairs of neighbouring characters
-- (CJK bigrams; Latin words and numbers the same way, so any part of a word is found) and its last
-- character. A query needs all the pairs of each of its runs, or for a one-character run any term
-- starting with that character (a character is either followed by another in its run, or last);
-- then the exact normalised substring is checked. So it finds exactly the articles containing it.

CREATE FUNCTION haowatch_search_normalize(doc text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT lower(normalize(doc, NFKC))
$$;

-- Functions that call other haowatch functions keep the schema's search path: index maintenance
-- (VACUUM, ANALYZE, CREATE INDEX on PostgreSQL 17) runs them with only pg_catalog on the path.

-- Separators (each run of them becomes one space): ASCII whitespace and punctuation, Latin-1
-- punctuation, general punctuation (“”…—), CJK punctuation (、。《》「」), CJK compatibility forms and
-- full-width punctuation left after NFKC.
CREATE FUNCTION haowatch_search_chars(doc text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path FROM CURRENT AS $$
    SELECT string_to_array(regexp_replace(haowatch_search_normalize(coalesce(doc, '')),
        '[\s!-/:-@\[-`{-~\u0080-\u00bf\u00d7\u00f7\u2000-\u206f\u2e00-\u2e7f\u3000-\u303f\ufe10-\ufe1f\ufe30-\ufe6f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\ufff0-\uffff]+', ' ', 'g'), NULL)
$$;

-- Arrays are walked with unnest: element access by subscript is linear in text arrays.
CREATE FUNCTION haowatch_search_terms(doc text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path FROM CURRENT AS $$
    SELECT ARRAY(SELECT CASE WHEN u.b IS NULL OR u.b = ' ' THEN u.a ELSE u.a || u.b END
                 FROM unnest(x.c, x.c[2:]) AS u(a, b) WHERE u.a <> ' ')
    FROM (SELECT haowatch_search_chars(doc) AS c) AS x
$$;
COMMENT ON FUNCTION haowatch_search_terms IS
    'search terms of a text: each pair of neighbouring characters of its runs, and each run''s last character';

CREATE FUNCTION haowatch_search_vector(title text, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path FROM CURRENT AS $$
    SELECT array_to_tsvector(haowatch_search_terms(coalesce(title, '') || E'\n' || coalesce(body, '')))
$$;

CREATE FUNCTION haowatch_search_query(query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path FROM CURRENT AS $$
    SELECT CASE WHEN count(*) = 0 THEN NULL ELSE string_agg(term, ' & ')::tsquery END
    FROM (SELECT DISTINCT '''' || replace(replace(CASE WHEN s.single THEN u.a ELSE u.a || u.b END, '\', '\\'),
                                          '''', '\''') || '''' || CASE WHEN s.single THEN ':*' ELSE '' END AS term
          FROM (SELECT haowatch_search_chars(query) AS c) AS x
          CROSS JOIN LATERAL unnest(x.c, x.c[2:], ARRAY[' '] || x.c) AS u(a, b, before)
          CROSS JOIN LATERAL (SELECT (u.b IS NULL OR u.b = ' ') AND u.before = ' ') AS s(single)
          WHERE u.a <> ' ' AND (s.single OR (u.b IS NOT NULL AND u.b <> ' '))) AS terms
$$;
COMMENT ON FUNCTION haowatch_search_query IS
    'the tsquery every text containing the query matches (NULL when the query has no letters or digits)';

CREATE INDEX articles_search_idx ON articles USING gin (haowatch_search_vector(title, body_text));

CREATE FUNCTION haowatch_count(haystack text, needle text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE WHEN needle = '' THEN 0
                ELSE (length(haystack) - length(replace(haystack, needle, ''))) / length(needle) END
$$;

CREATE FUNCTION haowatch_snippet(body text, query text, width integer DEFAULT 80) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH p AS (SELECT strpos(lower(coalesce(body, '')), lower(query)) AS at, length(query) AS n)
    SELECT CASE
        WHEN body IS NULL OR body = '' THEN ''
        WHEN p.at = 0 THEN left(body, width) || CASE WHEN length(body) > width THEN '…' ELSE '' END
        ELSE CASE WHEN p.at > width / 3 + 1 THEN '…' ELSE '' END
             || substr(body, greatest(1, p.at - width / 3), p.at - greatest(1, p.at - width / 3))
             || '<b>' || substr(body, p.at, p.n) || '</b>'
             || substr(body, p.at + p.n, width - width / 3)
             || CASE WHEN length(body) >= p.at + p.n + width - width / 3 THEN '…' ELSE '' END
    END
    FROM p
$$;
COMMENT ON FUNCTION haowatch_snippet IS 'a piece of body around the first match, the match in <b>…</b>';

-- Tokenising a row costs about a millisecond, reading its index entries microseconds: the index is
-- always used, however common the query (enable_seqscan off for this function only).
CREATE FUNCTION search_articles(query text, lim integer DEFAULT 50, source text DEFAULT NULL,
                                since timestamptz DEFAULT NULL)
RETURNS TABLE (docid text, title text, published_at timestamptz, source_tid text, rank real, snippet text)
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
DECLARE
    shown text := btrim(coalesce(query, ''), E' \t\r\n\u3000');
    q     text := haowatch_search_normalize(shown);
    tsq   tsquery := haowatch_search_query(q);
BEGIN
    IF q = '' OR coalesce(lim, 0) <= 0 THEN
        RETURN;
    END IF;
    -- Planned per call with the actual values, so the GIN index is used whenever the query has terms.
    RETURN QUERY EXECUTE format($q$
        WITH hits AS (
            SELECT a.docid, a.title, a.published_at, a.source_tid, a.body_text,
                   length(coalesce(a.body_text, '')) AS body_length,
                   haowatch_count(lower(coalesce(a.title, '')), $7) AS in_title,
                   haowatch_count(lower(coalesce(a.body_text, '')), $7) AS in_body
            FROM articles a
            WHERE %s %s %s
        ), best AS (
            -- Counted in lower case (as ILIKE compares); only a text without such a match is normalised
            -- (NFKC is the costly step), for matches that differ in width only (ＡＩ for ai).
            SELECT h.docid, h.title, h.published_at, h.source_tid,
                   ((3 * h.in_title + h.in_body + (h.in_title + h.in_body = 0)::int)
                    / (1 + ln(1 + h.body_length / 500.0)))::real AS rank
            FROM hits h
            WHERE h.in_title > 0 OR h.in_body > 0
               OR strpos(haowatch_search_normalize(coalesce(h.title, '') || E'\n' || coalesce(h.body_text, '')), $1) > 0
            ORDER BY rank DESC, h.published_at DESC NULLS LAST, h.docid
            LIMIT $6
        )
        SELECT b.docid, b.title, b.published_at, b.source_tid, b.rank,
               haowatch_snippet((SELECT a.body_text FROM articles a WHERE a.docid = b.docid), $2)
        FROM best b
        ORDER BY b.rank DESC, b.published_at DESC NULLS LAST, b.docid $q$,
        CASE WHEN tsq IS NULL THEN 'true' ELSE 'haowatch_search_vector(a.title, a.body_text) @@ $3' END,
        CASE WHEN source IS NULL THEN '' ELSE 'AND a.source_tid = $4' END,
        CASE WHEN since IS NULL THEN '' ELSE 'AND a.published_at >= $5' END)
    USING q, shown, tsq, source, since, lim, lower(shown);
END
$$;
COMMENT ON FUNCTION search_articles IS
    'articles whose title or body contains the query (case and width folded), best first, with a snippet';

-- ---------------------------------------------------------------------------------------------------
CREATE FUNCTION haowatch_ensure_partitions(upto timestamptz DEFAULT now() + interval '2 months')
RETURNS integer LANGUAGE sql AS $$
    SELECT haowatch_month_partitions('link_sightings', now(), upto)
         + haowatch_month_partitions('article_revisions', now(), upto)
         + haowatch_month_partitions('account_snapshots', now(), upto)
$$;
COMMENT ON FUNCTION haowatch_ensure_partitions IS
    'create this and the coming months'' partitions (haowatch does this on every start and daily)';

