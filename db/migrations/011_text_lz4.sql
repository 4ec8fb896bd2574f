-- The articles' text compressed with lz4 where the server has it (earlier revisions keep pglz).
--
-- pglz, the default, gives up on most Chinese text (it keeps a value uncompressed unless it saves a
-- quarter), so body_text, body_html and body_paragraphs were stored raw, each in full. lz4 saves
-- about 15 % on them. New and changed values use it; rows stored before keep theirs (rewriting every
-- article only to recompress it is left to the user: UPDATE articles SET body_html = body_html || '').
DO $$
BEGIN
    ALTER TABLE articles ALTER COLUMN body_text SET COMPRESSION lz4,
                         ALTER COLUMN body_html SET COMPRESSION lz4,
                         ALTER COLUMN body_paragraphs SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL is built without lz4: article text stays with pglz';
END
$$;
