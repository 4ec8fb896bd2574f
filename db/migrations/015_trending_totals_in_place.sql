-- trending_links reads trending_totals: the same totals, kept with updates that stay on their page.
--
-- Every store updates the totals of the twenty or so links of the 热点推荐 list it saw. An index on the
-- ranking columns (trending_targets_rank_idx) made each update write new index entries and a new row
-- elsewhere, so the table grew by kilobytes per article between vacuums. Without it the updates are
-- HOT (the row is rewritten in place on its page, half of which is kept free); trending_links sorts
-- the few thousand links instead. trending_targets keeps its rows but is no longer updated.

CREATE TABLE trending_totals (
    target_url        text PRIMARY KEY,
    target_docid      text,
    title             text,
    source_name       text,
    shown_on_articles bigint NOT NULL,
    times_seen        bigint NOT NULL,
    first_seen_at     timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL
) WITH (fillfactor = 50);
COMMENT ON TABLE trending_totals IS
    'each link ever shown under 热点推荐 with its totals (what trending_links shows), kept at store time';
INSERT INTO trending_totals SELECT * FROM trending_targets;
COMMENT ON TABLE trending_targets IS
    'superseded by trending_totals (migration 015), no longer updated; may be removed once checked';
ALTER TABLE trending_spans SET (fillfactor = 50);

CREATE OR REPLACE FUNCTION haowatch_rebuild_trending() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- Stores wait meanwhile (they update these tables), so the result is consistent.
    LOCK TABLE trending_list_order, trending_spans, trending_totals IN EXCLUSIVE MODE;
    DELETE FROM trending_totals;
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

    INSERT INTO trending_totals (target_url, target_docid, title, source_name, shown_on_articles, times_seen,
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
    'recompute trending_totals and trending_spans (the data of trending_links and trending_history)'
    ' from link_lists and link_sightings, e.g. after detaching old link_sightings partitions';

CREATE OR REPLACE VIEW trending_links AS
SELECT target_url, target_docid, title, source_name, shown_on_articles, times_seen, first_seen_at, last_seen_at
FROM trending_totals
ORDER BY shown_on_articles DESC, last_seen_at DESC;
COMMENT ON VIEW trending_links IS 'links shown under 热点推荐, most-seen first';

