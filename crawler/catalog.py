"""What the spider asks the database before it fetches: which listed articles are still missing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg import Connection
from psycopg.rows import DictRow

from db import articles as articles_db
from db import channels as channels_db
from db.connection import connect


class Catalog:
    """A small, lazily opened connection for the spider's routing questions."""

    def __init__(self, database_url: str, max_fetch_failures: int) -> None:
        self.database_url = database_url
        self.max_fetch_failures = max_fetch_failures
        self._conn: Connection[DictRow] | None = None

    def _connection(self) -> Connection[DictRow]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.database_url)
        return self._conn

    def unfetched(self, tid: str, listed: Sequence[str]) -> list[str]:
        """Listed docids not yet stored, plus earlier-listed ones whose fetch failed."""
        try:
            return articles_db.unfetched_docids(self._connection(), tid, listed, self.max_fetch_failures)
        except psycopg.OperationalError:
            # One reconnect: the server may have restarted since the last question.
            self._conn = None
            return articles_db.unfetched_docids(self._connection(), tid, listed, self.max_fetch_failures)

    def source_of(self, docid: str) -> tuple[str | None, str | None]:
        """(source tid, listed title) of an article, when known."""
        return articles_db.listed_title(self._connection(), docid)

    def check_context(self, tid: str) -> channels_db.CheckContext:
        """History, cross-check counter and last status of a source (with the database's clock)."""
        try:
            return channels_db.check_context(self._connection(), tid)
        except psycopg.OperationalError:
            self._conn = None
            return channels_db.check_context(self._connection(), tid)

    def known(self, tid: str, ids: Sequence[str], before: datetime) -> set[str]:
        """Which of ``ids`` the source had listed before ``before``."""
        return channels_db.known_ids(self._connection(), tid, ids, before)

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
