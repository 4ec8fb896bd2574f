-- Trending read from small tables kept at store time.
--
-- Before: trending_links aggregated every sighting of all history (through article_links) and
-- trending_history numbered every 热点推荐 list ever seen on each read, so both grew slower with every
-- day of data. Now haowatch keeps, in the same transaction that stores an article, one row per
-- trending link (trending_targets) and one row per span (trending_spans); the views read those.
-- Both tables are derived data: haowatch_rebuild_trending() recomputes them from link_lists and
-- link_sightings (this migration does, and users may after archiving partitions).

-- ---------------------------------------------------------------------------------------------------
-- The order of the 热点推荐 lists: the order haowatch first stored them (seq 1, 2, ...). A span is a run
-- of consecutive lists in this order. Converted lists are numbered by (first_seen_at, id) as before.

CREATE TABLE trending_list_order (
    list_id bigint PRIMARY KEY REFERENCES link_lists (id),
    seq     bigint NOT NULL CONSTRAINT trending_list_order_seq UNIQUE
);
COMMENT ON TABLE trending_list_order IS
    'the 热点推荐 lists in the order haowatch first stored them (spans are runs of consecutive lists)';

CREATE TABLE trending_spans (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_url    text NOT NULL,
    first_seq     bigint NOT NULL,
    last_seq      bigint NOT NULL,
    target_docid  text,
    title         text,
    source_name   text,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    positions     integer[] NOT NULL,
    best_position integer NOT NULL,
    lists         integer NOT NULL,
    pages         integer NOT NULL,
    times_seen    integer NOT NULL,
    CONSTRAINT trending_spans_start UNIQUE (target_url, first_seq)
) WITH (fillfactor = 80);  -- every store bumps the counters of about 20 spans (HOT updates)
COMMENT ON TABLE trending_spans IS
    'each span of time a link stayed in 热点推荐 (what trending_history shows), kept at store time';
COMMENT ON COLUMN trending_spans.first_seq IS 'trending_list_order.seq of the first list of the span';
COMMENT ON COLUMN trending_spans.last_seq IS 'trending_list_order.seq of the last list of the span';
CREATE INDEX trending_spans_started_idx ON trending_spans (started_at);
CREATE INDEX trending_spans_last_idx ON trending_spans (last_seq);

CREATE TABLE trending_targets (
    target_url        text PRIMARY KEY,
    target_docid      text,
    title             text,
    source_name       text,
    shown_on_articles bigint NOT NULL,
    times_seen        bigint NOT NULL,
    first_seen_at     timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL
) WITH (fillfactor = 80);
COMMENT ON TABLE trending_targets IS
    'each link ever shown under 热点推荐 with its totals (what trending_links shows), kept at store time';
CREATE INDEX trending_targets_rank_idx ON trending_targets (shown_on_articles DESC, last_seen_at DESC);

-- ---------------------------------------------------------------------------------------------------
-- Recompute both tables from the stored lists and sightings (what the views computed until now).

CREATE FUNCTION haowatch_rebuild_trending() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- Stores wait meanwhile (they update these tables), so the result is consistent.
    LOCK TABLE trending_list_order, trending_spans, trending_targets IN EXCLUSIVE MODE;
    DELETE FROM trending_targets;
    DELETE FROM trending_spans;
    DELETE FROM trending_list_order;
    INSERT INTO trending_list_order (list_id, seq)
    SELECT id, row_number() OVER (ORDER BY first_seen_at, id) FROM link_lists WHERE block = 'trending';

    INSERT INTO trending_spans (target_url, first_seq, last_seq, target_docid, title, source_name, started_at,
                                ended_at, positions, best_position, lists, pages, times_seen)
    WITH entries AS (
        SELECT t.url, t.docid, t.title, t.source_name, e.position, o.seq, l.first_seen_at, l.last_seen_at,
               l.pages, l.times_seen,
               o.seq - row_number() OVER (PARTITION BY t.url ORDER BY o.seq) AS run
        FROM link_lists l
        JOIN trending_list_order o ON o.list_id = l.id
        CROSS JOIN LATERAL unnest(l.target_ids, l.positions) AS e(target_id, position)
        JOIN link_targets t ON t.id = e.target_id
    )
    SELECT url, min(seq), max(seq),
           (array_agg(docid ORDER BY seq DESC))[1],
           (array_agg(title ORDER BY seq DESC))[1],
           (array_agg(source_name ORDER BY seq DESC))[1],
           min(first_seen_at), max(last_seen_at), array_agg(DISTINCT position), min(position),
           count(*), sum(pages), sum(times_seen)
    FROM entries
    GROUP BY url, run;

    INSERT INTO trending_targets (target_url, target_docid, title, source_name, shown_on_articles, times_seen,
                                  first_seen_at, last_seen_at)
    SELECT t.url, max(t.docid), max(t.title), max(t.source_name), count(DISTINCT s.docid),
           sum(coalesce(s.times_seen, 1)), min(coalesce(s.first_seen_at, s.seen_at)), max(s.seen_at)
    FROM link_sightings s
    JOIN link_lists l ON l.id = s.list_id AND l.block = 'trending'
    CROSS JOIN LATERAL unnest(l.target_ids) AS e(target_id)
    JOIN link_targets t ON t.id = e.target_id
    GROUP BY t.url;
END
$$;
COMMENT ON FUNCTION haowatch_rebuild_trending IS
    'recompute trending_targets and trending_spans (the data of trending_links and trending_history)'
    ' from link_lists and link_sightings, e.g. after detaching old link_sightings partitions';

SELECT haowatch_rebuild_trending();

-- Same columns as before (README documents them), read from the kept tables.
CREATE OR REPLACE VIEW trending_links AS
SELECT target_url, target_docid, title, source_name, shown_on_articles, times_seen, first_seen_at, last_seen_at
FROM trending_targets
ORDER BY shown_on_articles DESC, last_seen_at DESC;
COMMENT ON VIEW trending_links IS 'links shown under 热点推荐, most-seen first';

CREATE OR REPLACE VIEW trending_history AS
SELECT target_url, target_docid, title, source_name, started_at, ended_at, ended_at - started_at AS duration,
       positions, best_position, lists, pages, times_seen
FROM trending_spans;
COMMENT ON VIEW trending_history IS
    'each span of time a link stayed in 热点推荐: when, at which positions, on how many article pages';
