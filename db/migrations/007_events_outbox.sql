-- Events and notifications: a transactional outbox.
--
-- Triggers on articles and sources write an `events` row, and one `deliveries` row per matching
-- subscription, inside the very transaction that made the change: whoever writes (the crawler, a
-- later worker, plain SQL) cannot change an article without its event, nor lose the event on a crash.
-- A dispatcher claims due deliveries (FOR UPDATE SKIP LOCKED), sends them, and records the outcome.

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CONSTRAINT events_kind
                    CHECK (kind IN ('new', 'edited', 'deleted', 'restored', 'failing', 'recovered', 'test')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    source_tid  text,
    docid       text,
    title       text,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb
);
COMMENT ON TABLE events IS
    'one row per new / edited / deleted / restored article and failing / recovered source; payload has the details';
COMMENT ON COLUMN events.payload IS
    'edited: {"from_revision": n, "to_revision": m}; failing/recovered: {"status", "error", "failures"}';
CREATE INDEX events_created_idx ON events (created_at DESC);
CREATE INDEX events_kind_created_idx ON events (kind, created_at DESC);
CREATE INDEX events_docid_idx ON events (docid) WHERE docid IS NOT NULL;

CREATE TABLE subscriptions (
    id          bigserial PRIMARY KEY,
    url         text NOT NULL CONSTRAINT subscriptions_url_nonempty CHECK (length(btrim(url)) > 0),
    events      text[] NOT NULL DEFAULT ARRAY['new', 'edited', 'deleted', 'restored', 'failing', 'recovered']
                    CONSTRAINT subscriptions_events_known CHECK (
                        events <@ ARRAY['new', 'edited', 'deleted', 'restored', 'failing', 'recovered']),
    source_tid  text,
    keyword     text,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE subscriptions IS
    'where events go: an Apprise URL (json://, mailto://, tgram://, slack://, dingtalk://, feishu://, wecombot://, ...).'
    ' INSERT INTO subscriptions (url) VALUES (''json://host/path'') is enough.';
COMMENT ON COLUMN subscriptions.source_tid IS 'only events of this source (NULL: every source)';
COMMENT ON COLUMN subscriptions.keyword IS 'only article events whose title or text contains this (case-insensitive)';

CREATE TABLE deliveries (
    event_id         bigint NOT NULL REFERENCES events (id),
    subscription_id  bigint NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_until    timestamptz,
    delivered_at     timestamptz,
    dead_at          timestamptz,
    last_error       text,
    PRIMARY KEY (event_id, subscription_id)
);
COMMENT ON TABLE deliveries IS
    'one row per (event, subscription): pending until delivered_at is set; dead_at after the last failed attempt';
CREATE INDEX deliveries_pending_idx ON deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX deliveries_subscription_idx ON deliveries (subscription_id);

-- Write one event and its deliveries; wake dispatchers (NOTIFY is sent at commit, never before).
CREATE OR REPLACE FUNCTION haowatch_emit_event(p_kind text, p_source_tid text, p_docid text, p_title text,
                                               p_text text, p_payload jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    INSERT INTO events (kind, source_tid, docid, title, payload)
    VALUES (p_kind, p_source_tid, p_docid, p_title, coalesce(p_payload, '{}'::jsonb))
    RETURNING id INTO event_id;
    INSERT INTO deliveries (event_id, subscription_id)
    SELECT event_id, s.id FROM subscriptions s
    WHERE s.enabled
      AND p_kind = ANY (s.events)
      AND (s.source_tid IS NULL OR s.source_tid = p_source_tid)
      AND (s.keyword IS NULL OR btrim(s.keyword) = ''
           OR strpos(lower(coalesce(p_title, '') || ' ' || coalesce(p_text, '')), lower(btrim(s.keyword))) > 0);
    IF FOUND THEN
        PERFORM pg_notify('haowatch_events', event_id::text);
    END IF;
    RETURN event_id;
END
$$;

CREATE OR REPLACE FUNCTION haowatch_article_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A row written for an article seen only as gone (no content) is not news.
        IF NEW.content_hash IS NOT NULL AND NEW.deleted_at IS NULL THEN
            PERFORM haowatch_emit_event('new', NEW.source_tid, NEW.docid, NEW.title, NEW.body_text,
                jsonb_build_object('revision', NEW.revision, 'url', NEW.url, 'duplicate_of', NEW.duplicate_of));
        END IF;
        RETURN NULL;
    END IF;
    IF OLD.content_hash IS NULL AND NEW.content_hash IS NOT NULL AND NEW.deleted_at IS NULL THEN
        PERFORM haowatch_emit_event('new', NEW.source_tid, NEW.docid, NEW.title, NEW.body_text,
            jsonb_build_object('revision', NEW.revision, 'url', NEW.url, 'duplicate_of', NEW.duplicate_of));
        RETURN NULL;
    END IF;
    IF NEW.revision > OLD.revision THEN
        PERFORM haowatch_emit_event('edited', NEW.source_tid, NEW.docid, NEW.title,
            coalesce(OLD.title, '') || ' ' || coalesce(OLD.body_text, '') || ' ' || coalesce(NEW.body_text, ''),
            jsonb_build_object('from_revision', OLD.revision, 'to_revision', NEW.revision, 'url', NEW.url,
                               'old_title', OLD.title));
    END IF;
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL AND OLD.content_hash IS NOT NULL THEN
        PERFORM haowatch_emit_event('deleted', NEW.source_tid, NEW.docid, NEW.title, NEW.body_text,
            jsonb_build_object('revision', NEW.revision, 'url', NEW.url));
    ELSIF OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL AND OLD.content_hash IS NOT NULL THEN
        PERFORM haowatch_emit_event('restored', NEW.source_tid, NEW.docid, NEW.title, NEW.body_text,
            jsonb_build_object('revision', NEW.revision, 'url', NEW.url));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER articles_events
AFTER INSERT OR UPDATE OF revision, deleted_at, content_hash ON articles
FOR EACH ROW EXECUTE FUNCTION haowatch_article_events();

-- A source is failing when its last check went from fine (ok, or never checked) to anything else,
-- and recovered when a check is ok again after that.
CREATE OR REPLACE FUNCTION haowatch_source_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_bad boolean := OLD.last_status IS NOT NULL AND OLD.last_status <> 'ok';
    is_bad  boolean := NEW.last_status IS NOT NULL AND NEW.last_status <> 'ok';
BEGIN
    IF is_bad AND NOT was_bad THEN
        PERFORM haowatch_emit_event('failing', NEW.tid, NULL, NEW.name, NULL,
            jsonb_build_object('status', NEW.last_status, 'error', NEW.last_error,
                               'failures', NEW.consecutive_failures));
    ELSIF was_bad AND NEW.last_status = 'ok' THEN
        PERFORM haowatch_emit_event('recovered', NEW.tid, NULL, NEW.name, NULL,
            jsonb_build_object('status', NEW.last_status, 'previous_status', OLD.last_status,
                               'failures', OLD.consecutive_failures));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sources_events
AFTER UPDATE OF last_status ON sources
FOR EACH ROW EXECUTE FUNCTION haowatch_source_events();
