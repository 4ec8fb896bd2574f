-- haowatch schema, version 1. Users query these tables directly: keep names stable.

CREATE TABLE sources (
    tid                  text PRIMARY KEY CONSTRAINT sources_tid_format CHECK (tid ~ '^T[0-9]{13}$'),
    name                 text,
    wemedia_id           text CONSTRAINT sources_wemedia_id_format
                             CHECK (wemedia_id IS NULL OR wemedia_id ~ '^W[0-9]{18,19}$'),
    interval             interval NOT NULL DEFAULT interval '30 minutes'
                             CONSTRAINT sources_interval_positive CHECK (interval >= interval '1 second'),
    enabled              boolean NOT NULL DEFAULT true,
    added_at             timestamptz NOT NULL DEFAULT now(),
    next_check_at        timestamptz NOT NULL DEFAULT now(),
    last_checked_at      timestamptz,
    last_success_at      timestamptz,
    last_status          text,
    last_error           text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_item_count      integer,
    claimed_by           text,
    claimed_until        timestamptz
);
COMMENT ON TABLE sources IS 'Watched 网易号 accounts. INSERT INTO sources (tid) VALUES (''T…'') is enough.';
COMMENT ON COLUMN sources.last_status IS
    'ok | empty (account page listed nothing) | parse_failed (markup changed?) | not_found | http_error | error';

CREATE INDEX sources_due_idx ON sources (next_check_at) WHERE enabled;

CREATE TABLE articles (
    docid            text PRIMARY KEY CONSTRAINT articles_docid_format
                         CHECK (docid ~ '^[0-9A-V]{8}[0-9A-Z]{8}$'),
    source_tid       text,           -- no foreign key on purpose: removing a source keeps its articles
    url              text NOT NULL,
    title            text,
    published_at     timestamptz,
    account_name     text,
    body_text        text,
    body_html        text,
    body_paragraphs  jsonb NOT NULL DEFAULT '[]'::jsonb,
    images           jsonb NOT NULL DEFAULT '[]'::jsonb,
    ip_location      text,
    author_statement text,
    content_hash     text,
    duplicate_of     text,
    revision         integer NOT NULL DEFAULT 1,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_fetched_at  timestamptz,
    last_changed_at  timestamptz,
    deleted_at       timestamptz,
    next_revisit_at  timestamptz,
    revisits         integer NOT NULL DEFAULT 0
);
COMMENT ON COLUMN articles.duplicate_of IS 'docid of the earlier article with the same normalised body';
COMMENT ON COLUMN articles.deleted_at IS 'set when the article page is gone (404 / not-found page)';

CREATE INDEX articles_source_published_idx ON articles (source_tid, published_at DESC);
CREATE INDEX articles_first_seen_idx ON articles (first_seen_at DESC);
CREATE INDEX articles_content_hash_idx ON articles (content_hash);
CREATE INDEX articles_revisit_idx ON articles (next_revisit_at) WHERE next_revisit_at IS NOT NULL;

CREATE TABLE article_revisions (
    id           bigserial PRIMARY KEY,
    docid        text NOT NULL REFERENCES articles (docid),
    revision     integer NOT NULL,
    fetched_at   timestamptz NOT NULL,
    replaced_at  timestamptz NOT NULL DEFAULT now(),
    title        text,
    body_text    text,
    body_html    text,
    images       jsonb,
    content_hash text,
    UNIQUE (docid, revision)
);
COMMENT ON TABLE article_revisions IS 'earlier versions of edited articles (the current one is in articles)';

CREATE TABLE article_links (
    docid          text NOT NULL REFERENCES articles (docid),
    block          text NOT NULL CONSTRAINT article_links_block CHECK (block IN ('related', 'trending', 'side')),
    module         text,
    position       integer NOT NULL,
    target_url     text NOT NULL,
    target_docid   text,
    title          text,
    source_name    text,
    shown_at       timestamptz,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    seen_at        timestamptz NOT NULL DEFAULT now(),
    times_seen     integer NOT NULL DEFAULT 1,
    CONSTRAINT article_links_unique UNIQUE NULLS NOT DISTINCT (docid, block, module, target_url)
);
COMMENT ON COLUMN article_links.shown_at IS 'the time printed next to the link, when the page shows one';
COMMENT ON COLUMN article_links.seen_at IS 'when haowatch last saw this link on the page';

CREATE INDEX article_links_target_docid_idx ON article_links (target_docid);
CREATE INDEX article_links_target_url_idx ON article_links (target_url);
CREATE INDEX article_links_block_seen_idx ON article_links (block, seen_at DESC);

CREATE TABLE listed_items (
    item_id          text PRIMARY KEY,
    item_type        text NOT NULL CONSTRAINT listed_items_type CHECK (item_type IN ('article', 'video')),
    source_tid       text NOT NULL,
    url              text NOT NULL,
    title            text,
    published_at     timestamptz,
    thumbnail        text,
    first_listed_at  timestamptz NOT NULL DEFAULT now(),
    last_listed_at   timestamptz NOT NULL DEFAULT now(),
    fetch_failures   integer NOT NULL DEFAULT 0,
    last_fetch_error text
);
COMMENT ON TABLE listed_items IS 'every item an account page (or list API) showed, articles and videos';
CREATE INDEX listed_items_source_idx ON listed_items (source_tid, first_listed_at DESC);

CREATE TABLE account_snapshots (
    id              bigserial PRIMARY KEY,
    tid             text NOT NULL,
    observed_at     timestamptz NOT NULL DEFAULT now(),
    name            text,
    article_count   integer,
    follower_count  integer
);
CREATE INDEX account_snapshots_tid_idx ON account_snapshots (tid, observed_at DESC);

CREATE TABLE crawl_runs (
    id               bigserial PRIMARY KEY,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    kind             text NOT NULL DEFAULT 'crawl',
    status           text NOT NULL DEFAULT 'running',
    sources          text[] NOT NULL DEFAULT '{}',
    requests         integer NOT NULL DEFAULT 0,
    new_articles     integer NOT NULL DEFAULT 0,
    updated_articles integer NOT NULL DEFAULT 0,
    deleted_articles integer NOT NULL DEFAULT 0,
    errors           integer NOT NULL DEFAULT 0,
    stats            jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX crawl_runs_started_idx ON crawl_runs (started_at DESC);

CREATE VIEW latest_articles AS
SELECT a.docid, a.source_tid, coalesce(s.name, a.account_name) AS account, a.title, a.published_at,
       a.url, a.ip_location, a.first_seen_at, a.revision, a.duplicate_of, a.body_text
FROM articles a
LEFT JOIN sources s ON s.tid = a.source_tid
WHERE a.deleted_at IS NULL
ORDER BY a.published_at DESC NULLS LAST;
COMMENT ON VIEW latest_articles IS 'live articles, newest first';

CREATE VIEW trending_links AS
SELECT l.target_url, max(l.target_docid) AS target_docid, max(l.title) AS title,
       max(l.source_name) AS source_name, count(DISTINCT l.docid) AS shown_on_articles,
       sum(l.times_seen) AS times_seen, min(l.first_seen_at) AS first_seen_at, max(l.seen_at) AS last_seen_at
FROM article_links l
WHERE l.block = 'trending'
GROUP BY l.target_url
ORDER BY shown_on_articles DESC, last_seen_at DESC;
COMMENT ON VIEW trending_links IS 'links shown under 热点推荐, most-seen first';

CREATE VIEW videos AS
SELECT item_id AS video_id, source_tid, title, published_at, url, first_listed_at
FROM listed_items WHERE item_type = 'video';
