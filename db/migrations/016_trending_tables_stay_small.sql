-- trending_spans: a new 热点推荐 list extends each continuing span in place.
--
-- A span's last_seq was indexed, so every new list moved each of its twenty or so continuing spans to
-- a new row version elsewhere in the table, leaving a dead one behind: an update that changes an
-- indexed column is never HOT. Spans are found by (target_url, first_seq) anyway (a link has only a
-- few spans), so the index goes. Measured over 100,000 stores on a server without autovacuum, this
-- table and trending_totals (a few thousand rows) had grown to 6 KB per article; the service now
-- also vacuums both itself when the server does not (db/maintenance.py).

DROP INDEX trending_spans_last_idx;
