"""Waiting for a configured database at start, instead of crash-looping while it boots."""

from __future__ import annotations

import time

import psycopg
from loguru import logger
from psycopg.rows import dict_row

from db import status as status_db
from db.connection import redact


def wait_for_database(url: str, timeout_seconds: int) -> None:
    """Return once ``url`` accepts a connection; retry (logged, with growing pauses) for up to ``timeout_seconds``.

    A refused password is not retried: it will not fix itself. After the timeout the last
    connection error is raised (the CLI prints it as one line).
    """
    deadline = time.monotonic() + timeout_seconds
    pause, attempt = 1.0, 0
    while True:
        attempt += 1
        try:
            with psycopg.connect(url, connect_timeout=5, autocommit=True, row_factory=dict_row) as conn:
                status_db.ping(conn)
            if attempt > 1:
                logger.info("database reachable after {} attempts", attempt)
            return
        except psycopg.OperationalError as exc:
            message = redact((str(exc).strip().splitlines() or ["connection failed"])[0])
            remaining = deadline - time.monotonic()
            if "password authentication failed" in message or remaining <= 0:
                raise
            logger.warning("database not reachable yet ({}); retrying in {:.0f}s (waiting at most {}s in all)",
                           message, min(pause, remaining), timeout_seconds)
        time.sleep(min(pause, max(remaining, 0.0)))
        pause = min(pause * 2, 10.0)
