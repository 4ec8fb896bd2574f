-- Tell running services when sources change, so a source added, paused, re-timed or removed by
-- plain SQL is honoured within seconds (services LISTEN on haowatch_sources).
CREATE OR REPLACE FUNCTION haowatch_notify_sources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('haowatch_sources', coalesce(NEW.tid, OLD.tid));
    RETURN NULL;
END
$$;

CREATE TRIGGER sources_changed
AFTER INSERT OR DELETE OR UPDATE OF enabled, interval ON sources
FOR EACH ROW EXECUTE FUNCTION haowatch_notify_sources();
