-- Bounded values, so that no value a user can type or insert stops the service for other sources,
-- and the URL each article was actually fetched from.

-- An interval longer than 366 days (or written by SQL beyond what a timestamp can hold) is
-- brought into range rather than refused: the source stays watched, at the longest interval.
UPDATE sources SET interval = interval '366 days' WHERE interval > interval '366 days';
UPDATE sources SET interval = interval '1 second' WHERE interval < interval '1 second';
-- sources_interval_positive (migration 001) keeps the lower bound.
ALTER TABLE sources ADD CONSTRAINT sources_interval_at_most_366_days CHECK (interval <= interval '366 days');

ALTER TABLE articles ADD COLUMN IF NOT EXISTS fetched_url text;
COMMENT ON COLUMN articles.fetched_url IS
    'the URL the stored page was actually fetched from (after any redirect NetEase made)';
