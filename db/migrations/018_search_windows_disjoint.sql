-- search_articles: each window of time reads the candidates inside it once; each candidate's text is
-- read once.
--
-- Measured at 1,000,000 articles (benchmarks/bench_storage.py), the index path of migration 017 read
-- every article holding the query's pairs of characters in every window: the planner, estimating a
-- single candidate for pairs that are rarely apart, never ANDed the index with the window's range of
-- published_at, and the windows overlapped, so a phrase needing three windows checked its newest
-- candidates three times. Now the windows are disjoint, each asked only for the matches still missing
-- and sized from the share of matches seen so far; the range is ANDed in (the query handed to the
-- planner as a sub-select) where the candidates seen so far say that reads fewer rows. Checking a
-- candidate cost 25 µs, most of it reading its body from TOAST and decompressing it, once per function
-- given the column: title and body are now joined once per article and the tests run on that. A
-- query holding a line break, which migrations 012-017 could match across title and body after
-- normalising, is looked for in each apart. JIT, which compiled the larger window queries (8 ms), is
-- off: these queries run for milliseconds.

CREATE OR REPLACE FUNCTION search_articles(query text, lim integer DEFAULT 50, source text DEFAULT NULL,
                                           since timestamptz DEFAULT NULL)
RETURNS TABLE (docid text, title text, published_at timestamptz, source_tid text, rank real, snippet text)
LANGUAGE plpgsql STABLE SET enable_seqscan = off SET work_mem = '32MB' SET jit = off AS $$
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
    -- x.t is title and body joined by a line break, read from TOAST and decompressed once per article
    -- (each function given the column would do that again). A query without a line break (none
    -- comes from normalising) cannot match across the join; one with a line break is looked for in
    -- title and body apart, as ILIKE does.
    matches text := CASE WHEN strpos(shown, E'\n') = 0
                         THEN '(strpos(lower(x.t), $7) > 0 OR strpos(haowatch_search_normalize(x.t), $1) > 0)'
                         ELSE '(strpos(lower(coalesce(c.title, '''')), $7) > 0 OR strpos(lower(coalesce(c.body_text, '''')), $7) > 0'
                              ' OR strpos(haowatch_search_normalize(coalesce(c.title, '''')), $1) > 0'
                              ' OR strpos(haowatch_search_normalize(coalesce(c.body_text, '''')), $1) > 0)' END;
    joined  text := ' CROSS JOIN LATERAL (SELECT coalesce(c.title, '''') || E''\n'' || coalesce(c.body_text, '''') AS t OFFSET 0) x';
    alts    text;
    likes   text[];  -- LIKE patterns, one per character some other one normalises to a character of q
    hit     text;  -- the quick query's check (NULL: the full one)
    found   text[] := '{}';
    walked  bigint := 0;
    sql     text;
    cutoff  timestamptz;
    newest_at timestamptz;
    upper_at  timestamptz;                                 -- the window's end (NULL: none)
    got     text[];
    grow    real;
    window_n  real;                                        -- articles in the window, from the pace
    covered_n real := 0;                                   -- ... and in the windows before it
    cands   real := 0;                                     -- the candidates those windows held
    n       bigint;
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
        -- Whether the text holds such a character: a LIKE per character for one or two of them (each
        -- costs a third of one regular expression over the text), else one regular expression.
        IF char_length(alts) <= 2 THEN
            likes := ARRAY(SELECT '%' || regexp_replace(ch, '([\\%_])', '\\\1', 'g') || '%'
                           FROM regexp_split_to_table(alts, '') AS ch WHERE ch <> '');
            hit := 'x.t LIKE ANY ($9)';
        ELSE
            likes := ARRAY['[' || regexp_replace(alts, '([\]\\^-])', '\\\1', 'g') || ']'];
            hit := 'x.t ~ ($9)[1]';
        END IF;
        hit := '(strpos(x.t, $1) > 0' || CASE WHEN alts = '' THEN '' ELSE ' OR (' || hit || ' AND ' || matches || ')' END || ')';
        FOR r IN EXECUTE format($q$
            SELECT c.docid, %s AS hit
            FROM (SELECT a.docid, a.title, a.body_text FROM articles a WHERE true %s
                  ORDER BY a.published_at DESC NULLS LAST, a.docid LIMIT $8) c %s $q$, hit, since_c, joined)
        USING q, shown, tsq, source, since, pool, lower(shown), walk, likes
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
        -- The candidates are sorted newest first and checked only until enough of them match.
        sql := format($q$
            SELECT coalesce(array_agg(m.docid), '{}'), max(m.n) FROM (
                SELECT c.docid, c.n FROM (
                    SELECT a.docid, a.title, a.body_text, count(*) OVER () AS n FROM articles a WHERE %s %s %s %%2$s
                    ORDER BY a.published_at + interval '0' DESC NULLS LAST, a.docid OFFSET 0) c %s
                WHERE %s
                LIMIT $6) m $q$,
            CASE WHEN tsq IS NULL THEN 'true' ELSE 'haowatch_search_vector(a.title, a.body_text) @@ %1$s' END,
            CASE WHEN source IS NULL THEN '' ELSE 'AND a.source_tid = $4' END, since_c, joined, coalesce(hit, matches));
        found := '{}';
        IF tsq IS NOT NULL THEN
            -- Disjoint windows of time, newest first, each asked only for the matches still missing: the
            -- first holds about 20,000 articles (from the pace of the newest 250), each next one is sized
            -- from the share of matches seen so far (half as large again as that predicts), growing at
            -- least twice and at most sixteen times; what is left after the oldest is read as one.
            SELECT max(p.published_at), max(p.published_at) - min(p.published_at) INTO newest_at, pace
            FROM (SELECT a.published_at FROM articles a WHERE a.published_at IS NOT NULL
                  ORDER BY a.published_at DESC NULLS LAST, a.docid LIMIT 250) p;
            oldest_at := (SELECT min(a.published_at) FROM articles a);
            cutoff := newest_at - pace * 80;
            WHILE cutoff > greatest(oldest_at, since) AND pace > interval '0' LOOP
                -- The planner estimates a single candidate for pairs of characters that are rarely apart,
                -- so it reads every candidate, whatever its age, and keeps those in the window. Given the
                -- query as a sub-select, which it cannot see into, it assumes the default share (0.5 %)
                -- and first ANDs the index with the window's range of published_at. That costs about a
                -- twentieth of a candidate read per article in the range: it is asked for in the first
                -- window, and later where the candidates seen so far (the matching windows tell how
                -- many they held) promise more outside the window than a twentieth of those inside.
                window_n := 250 * extract(epoch FROM coalesce(upper_at, newest_at) - cutoff) / extract(epoch FROM pace);
                EXECUTE format(sql, CASE WHEN upper_at IS NULL OR cands IS NULL
                                           OR window_n < 20 * (cands + cands / greatest(covered_n, 1)
                                                                        * greatest(stored - covered_n - window_n, 0))
                                         THEN '(SELECT $3)' ELSE '$3' END,
                               'AND a.published_at >= $10' || CASE WHEN upper_at IS NULL THEN ''
                                                                  ELSE ' AND a.published_at < $11' END)
                INTO got, n USING q, shown, tsq, source, since, pool - cardinality(found), lower(shown), walk, likes,
                                  cutoff, upper_at;
                found := found || got;
                EXIT WHEN cardinality(found) >= pool;
                -- No match leaves the count untold: the candidates seen so far are then unknown.
                cands := CASE WHEN n IS NULL THEN NULL ELSE coalesce(cands, 0) + n END;
                upper_at := cutoff;
                covered_n := covered_n + window_n;
                grow := CASE WHEN cardinality(found) = 0 THEN 8
                             ELSE least(16, greatest(2, 1 + 1.5 * (pool - cardinality(found)) / cardinality(found))) END;
                cutoff := newest_at - (newest_at - cutoff) * grow;
            END LOOP;
        END IF;
        IF cardinality(found) < pool THEN
            -- What is left: the range is ANDed in only where the candidates already seen outnumber a
            -- twentieth of the articles left.
            EXECUTE format(sql, CASE WHEN upper_at IS NOT NULL AND stored - covered_n < 20 * cands
                                     THEN '(SELECT $3)' ELSE '$3' END,
                           CASE WHEN upper_at IS NULL THEN ''
                                ELSE 'AND (a.published_at < $11 OR a.published_at IS NULL)' END)
            INTO got, n USING q, shown, tsq, source, since, pool - cardinality(found), lower(shown), walk, likes,
                              cutoff, upper_at;
            found := found || got;
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
