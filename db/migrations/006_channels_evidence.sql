-- Field resilience: which discovery channels work per source, gaps that could not be closed,
-- and the raw evidence of pages haowatch did not understand or was refused.

-- One row per (source, channel): account (the account page, primary), listapi (list.do by W-id),
-- applist (the app's subscribe list by T-id).
CREATE TABLE source_channels (
    tid                  text NOT NULL,
    channel              text NOT NULL CONSTRAINT source_channels_channel
                             CHECK (channel IN ('account', 'listapi', 'applist')),
    last_status          text NOT NULL,
    last_error           text,
    last_http_status     integer,
    last_item_count      integer,
    last_checked_at      timestamptz NOT NULL DEFAULT now(),
    last_ok_at           timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    drift_items          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tid, channel)
);
COMMENT ON TABLE source_channels IS
    'per source and discovery channel (account | listapi | applist): did it work at its last use';
COMMENT ON COLUMN source_channels.last_status IS
    'ok | empty | blocked | parse_failed | http_error | not_found | unavailable (no W-id yet)';
COMMENT ON COLUMN source_channels.drift_items IS
    'items other channels listed that this channel missed, summed over cross-checks';

ALTER TABLE sources
    ADD COLUMN checks_since_cross_check integer NOT NULL DEFAULT 0,
    ADD COLUMN last_cross_check_at timestamptz,
    ADD COLUMN active_channel text;
COMMENT ON COLUMN sources.active_channel IS
    'the channel the last check used: account normally; another one while the source is degraded';
COMMENT ON COLUMN sources.last_status IS
    'ok | degraded (a fallback channel works) | blocked | empty | parse_failed | not_found | http_error | error';

-- A check that found nothing it already knew and could not page back far enough to overlap.
CREATE TABLE source_gaps (
    id             bigserial PRIMARY KEY,
    tid            text NOT NULL,
    detected_at    timestamptz NOT NULL DEFAULT now(),
    pages_walked   integer NOT NULL,
    items_found    integer NOT NULL,
    oldest_seen_at timestamptz,
    reason         text NOT NULL,
    closed_at      timestamptz
);
COMMENT ON TABLE source_gaps IS
    'articles may be missing between oldest_seen_at and what was stored before; closed_at set once overlapped';
CREATE INDEX source_gaps_open_idx ON source_gaps (tid) WHERE closed_at IS NULL;

-- Evidence: responses that ended unexpected, parse_failed or blocked, kept compressed and bounded.
CREATE TABLE captured_pages (
    id          bigserial PRIMARY KEY,
    captured_at timestamptz NOT NULL DEFAULT now(),
    url         text NOT NULL,
    status      integer,
    headers     jsonb NOT NULL DEFAULT '{}'::jsonb,
    reason      text NOT NULL CONSTRAINT captured_pages_reason
                    CHECK (reason IN ('unexpected', 'parse_failed', 'blocked')),
    page_type   text NOT NULL,
    detail      text,
    source_tid  text,
    body_size   integer NOT NULL,
    body_gzip   bytea NOT NULL
);
COMMENT ON TABLE captured_pages IS
    'raw responses haowatch could not use (gzip); `haowatch captured export DIR` writes them as fixtures';
CREATE INDEX captured_pages_reason_idx ON captured_pages (reason, captured_at DESC);
CREATE INDEX captured_pages_age_idx ON captured_pages (captured_at);
