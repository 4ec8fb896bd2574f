-- The continuous crawl worker (issue 13): listed articles still to fetch form a queue with short
-- leases, and every check records which worker made it.

ALTER TABLE listed_items
    ADD COLUMN pending boolean NOT NULL DEFAULT false,
    ADD COLUMN claimed_by text,
    ADD COLUMN fetch_after timestamptz;
COMMENT ON COLUMN listed_items.pending IS
    'an article listed but not stored yet (nor gone, nor given up after HAOWATCH_MAX_FETCH_FAILURES)';
COMMENT ON COLUMN listed_items.claimed_by IS 'the crawl worker fetching it now (a lease until fetch_after)';
COMMENT ON COLUMN listed_items.fetch_after IS 'not fetched before this time: a lease, or the wait after a failure';

-- What the previous crawl model left pending: listed articles never stored (8 is the default limit
-- of failures before an article is given up).
UPDATE listed_items li SET pending = true
 WHERE li.item_type = 'article' AND li.fetch_failures < 8
   AND coalesce(li.last_fetch_error, '') <> 'gone'
   AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.docid = li.item_id);

CREATE INDEX listed_items_pending_idx ON listed_items (fetch_after NULLS FIRST, first_listed_at) WHERE pending;

ALTER TABLE sources ADD COLUMN last_checked_by text;
COMMENT ON COLUMN sources.last_checked_by IS 'the crawl worker (replica/worker) that made the last check';

CREATE INDEX sources_claimed_idx ON sources (claimed_by) WHERE claimed_by IS NOT NULL;
