"""Upkeep of the tables every store updates in place, for servers that do not vacuum on their own."""

from __future__ import annotations

from psycopg import Connection
from psycopg.rows import DictRow

# Small tables whose rows every store rewrites (the counters of the 热点推荐 links it saw). Pruning
# frees space on their pages, but only VACUUM tells the free-space map; without it every row that
# has to move extends the table.
HOT_TABLES = ("trending_totals", "trending_spans")


def autovacuum_on(conn: Connection[DictRow]) -> bool:
    """Whether the server runs autovacuum (the launcher's setting; tables may still opt out)."""
    row = conn.execute("SELECT current_setting('autovacuum') = 'on' AS on").fetchone()
    return bool(row and row["on"])


def vacuum_hot_tables(conn: Connection[DictRow]) -> bool:
    """VACUUM the tables stores update in place when the server has autovacuum off; return whether it did.

    Needs an autocommit connection (VACUUM cannot run in a transaction block); a table another
    session holds a conflicting lock on is skipped until the next call.
    """
    if autovacuum_on(conn):
        return False
    conn.execute("VACUUM (SKIP_LOCKED) " + ", ".join(HOT_TABLES))
    return True
