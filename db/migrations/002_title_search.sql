-- Substring search on titles (WHERE title ILIKE '%关键词%') uses a trigram index when pg_trgm exists.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX IF NOT EXISTS articles_title_trgm_idx ON articles USING gin (title gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS article_links_title_trgm_idx ON article_links USING gin (title gin_trgm_ops);
    ELSE
        RAISE NOTICE 'pg_trgm is not available: title search will scan';
    END IF;
END
$$;
