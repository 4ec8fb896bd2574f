-- search_articles: the newest articles are walked only while that looks cheaper than the index path.
--
-- Checking an article in the walk costs 25-80 µs here (its body is read from TOAST and decompressed).
-- The index path reads every article that has all of the query's pairs of characters, whatever its
-- age, to keep the newest: the planner, trusting an estimate of one candidate for a phrase of
-- correlated pairs, never intersects the index with the published_at range first. So its cost grows
-- with the number of such articles, the walk's with how rare the phrase is. After a probe of 200
-- articles the walk goes on only if the articles it still needs to check cost less than a quarter of
-- those the index would read (the estimated share of matches times the articles stored). At 7,000
-- articles the old rule (walk on if the probe promised twice enough) walked 1,000-2,000 articles
-- (50-100 ms) for phrases one article in twenty holds; at 1,000,000 the index path read 44,600
-- articles (230 ms) for such a phrase, which a walk finds in about 1,100 (50 at 4.5 %).
-- The index path also sorts its candidates itself: given articles_published_idx, the planner sometimes
-- walked that index instead, tokenising every article on the way (5 s for 年来的 at 7,000 articles).

CREATE OR REPLACE FUNCTION search_articles(query text, lim integer DEFAULT 50, source text DEFAULT NULL,
                                           since timestamptz DEFAULT NULL)
RETURNS TABLE (docid text, title text, published_at timestamptz, source_tid text, rank real, snippet text)
LANGUAGE plpgsql STABLE SET enable_seqscan = off SET work_mem = '32MB' AS $$
DECLARE
    shown   text := btrim(coalesce(query, ''), E' \t\r\n\u3000');
    q       text := haowatch_search_normalize(shown);
    tsq     tsquery := haowatch_search_query(q);
    pool    bigint := greatest(coalesce(lim, 0), 50);
    walk    bigint := greatest(coalesce(lim, 0), 50)::bigint * 40;  -- articles walked at most
    probe   bigint := 200;                                    -- ... and then only if that looks cheaper
    stored  real := (SELECT greatest(c.reltuples, 0) FROM pg_class c WHERE c.oid = 'articles'::regclass);
    rate    real;                                             -- share of the probe matching
    quick   boolean := tsq IS NOT NULL AND source IS NULL AND q = shown AND q ~ '^[0-9\u3400-\u4dbf\u4e00-\u9fff]+$';
    since_c text := CASE WHEN since IS NULL THEN '' ELSE ' AND a.published_at >= $5' END;
    -- Contains the query: in lower case (as ILIKE compares), else after normalising (NFKC, costly).
    matches text := '(strpos(lower(coalesce(c.title, '''')), $7) > 0 OR strpos(lower(coalesce(c.body_text, '''')), $7) > 0'
                    ' OR strpos(haowatch_search_normalize(coalesce(c.title, '''') || E''\n'' || coalesce(c.body_text, '''')), $1) > 0)';
    alts    text;
    hit     text;  -- the quick query's check (NULL: the full one)
    found   text[] := '{}';
    walked  bigint := 0;
    sql     text;
    cutoff  timestamptz;
    newest_at timestamptz;
    oldest_at timestamptz;
    pace    interval;
    given_up boolean := false;
    r       record;
BEGIN
    IF q = '' OR coalesce(lim, 0) <= 0 THEN
        RETURN;
    END IF;
    IF quick THEN
        SELECT coalesce(string_agg(DISTINCT v.source, ''), '') INTO alts
        FROM haowatch_search_variants v WHERE v.target = ANY (regexp_split_to_array(q, ''));
        -- Newest first, a strpos per article (a full check only for an article with a variant).
        hit := '(strpos(c.title, $1) > 0 OR strpos(c.body_text, $1) > 0'
            || CASE WHEN alts = '' THEN '' ELSE ' OR (coalesce(c.title, '''') || coalesce(c.body_text, '''') ~ $9 AND '
                                                 || matches || ')' END || ')';
        alts := '[' || regexp_replace(alts, '([\]\\^-])', '\\\1', 'g') || ']';
        FOR r IN EXECUTE format($q$
            SELECT c.docid, %s AS hit
            FROM (SELECT a.docid, a.title, a.body_text FROM articles a WHERE true %s
                  ORDER BY a.published_at DESC NULLS LAST, a.docid LIMIT $8) c $q$, hit, since_c)
        USING q, shown, tsq, source, since, pool, lower(shown), walk, alts
        LOOP
            walked := walked + 1;
            IF r.hit THEN
                found := found || r.docid;
                EXIT WHEN cardinality(found) >= pool;
            END IF;
            -- Walk on only if the rest of the walk looks cheaper than the index path, which reads every
            -- article holding the query's pairs of characters (about a quarter of the cost of a walked
            -- article each: no body is read), however old: rarer phrases, and all but common ones in a
            -- large database, go to the index.
            IF walked = probe THEN
                rate := greatest(cardinality(found), 0.5) / probe;
                IF (pool - cardinality(found)) / rate > 0.25 * rate * stored THEN
                    given_up := true;
                    EXIT;
                END IF;
            END IF;
        END LOOP;
        IF cardinality(found) < pool AND (given_up OR walked = walk) THEN
            found := NULL;  -- out of budget, not out of articles: the index finds them all
        END IF;
    ELSE
        found := NULL;
    END IF;
    IF found IS NULL THEN
        -- Sorted on an expression no index has: with articles_published_idx the LIMIT let the planner walk
        -- articles newest first tokenising each one (a millisecond each: seconds for a common phrase).
        -- Planned per call with the actual values, so the GIN index is used whenever the query has terms;
        -- the candidates are sorted newest first and checked only until `pool` of them match. First
        -- among the newest articles only, widening eightfold, then among all: where the planner's
        -- estimate is realistic (a query of one or two common pairs) it ANDs the index's candidates
        -- with the range of published_at and reads only those; otherwise a window saves nothing.
        sql := format($q$
            SELECT coalesce(array_agg(m.docid), '{}') FROM (
                SELECT c.docid FROM (
                    SELECT a.docid, a.title, a.body_text FROM articles a WHERE %s %s %s %%s
                    ORDER BY a.published_at + interval '0' DESC NULLS LAST, a.docid OFFSET 0) c
                WHERE %s
                LIMIT $6) m $q$,
            CASE WHEN tsq IS NULL THEN 'true' ELSE 'haowatch_search_vector(a.title, a.body_text) @@ $3' END,
            CASE WHEN source IS NULL THEN '' ELSE 'AND a.source_tid = $4' END, since_c, coalesce(hit, matches));
        -- Windows of about 20,000, 160,000, ... articles, sized from the pace of the newest 250.
        IF tsq IS NOT NULL THEN
            SELECT max(p.published_at), max(p.published_at) - min(p.published_at) INTO newest_at, pace
            FROM (SELECT a.published_at FROM articles a WHERE a.published_at IS NOT NULL
                  ORDER BY a.published_at DESC NULLS LAST, a.docid LIMIT 250) p;
            oldest_at := (SELECT min(a.published_at) FROM articles a);
            cutoff := newest_at - pace * 80;
            WHILE cutoff > oldest_at AND pace > interval '0' LOOP
                EXECUTE format(sql, 'AND a.published_at >= $10')
                INTO found USING q, shown, tsq, source, since, pool, lower(shown), walk, alts, cutoff;
                EXIT WHEN cardinality(found) >= pool;
                found := NULL;
                cutoff := newest_at - (newest_at - cutoff) * 8;
            END LOOP;
        END IF;
        IF found IS NULL THEN
            EXECUTE format(sql, '')
            INTO found USING q, shown, tsq, source, since, pool, lower(shown), walk, alts, cutoff;
        END IF;
    END IF;
    -- Occurrences counted in lower case (in the raw text for a query without case: the same count).
    RETURN QUERY EXECUTE format($q$
        WITH hits AS (
            SELECT a.docid, a.title, a.published_at, a.source_tid, a.body_text,
                   length(coalesce(a.body_text, '')) AS body_length,
                   (octet_length(%1$s) - octet_length(replace(%1$s, $2, ''))) / octet_length($2) AS in_title,
                   (octet_length(%2$s) - octet_length(replace(%2$s, $2, ''))) / octet_length($2) AS in_body
            FROM articles a
            WHERE a.docid = ANY ($1)
        ), best AS (
            SELECT h.docid, h.title, h.published_at, h.source_tid, h.body_text,
                   ((3 * h.in_title + h.in_body + (h.in_title + h.in_body = 0)::int)
                    / (1 + ln(1 + h.body_length / 500.0)))::real AS rank
            FROM hits h
            ORDER BY rank DESC, h.published_at DESC NULLS LAST, h.docid
            LIMIT $3
        )
        SELECT b.docid, b.title, b.published_at, b.source_tid, b.rank, haowatch_snippet(b.body_text, $4)
        FROM best b
        ORDER BY b.rank DESC, b.published_at DESC NULLS LAST, b.docid $q$,
        CASE WHEN quick THEN 'coalesce(a.title, '''')' ELSE 'lower(coalesce(a.title, ''''))' END,
        CASE WHEN quick THEN 'coalesce(a.body_text, '''')' ELSE 'lower(coalesce(a.body_text, ''''))' END)
    USING found, lower(shown), lim, shown;
END
$$;
COMMENT ON FUNCTION search_articles IS
    'the newest articles (50, or lim if more) whose title or body contains the query (case and width'
    ' folded), best ranked first, with a snippet';
