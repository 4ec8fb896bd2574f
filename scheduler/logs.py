"""Logging: loguru for haowatch, with the standard ``logging`` of Scrapy, Twisted and APScheduler routed into it."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

from db.connection import redact
from scheduler.scrapylog import DemoteBelow

_QUIET = {
    "scrapy.core.engine": logging.WARNING,  # spider opened / closing / closed: one per crawl
    "scrapy.extensions.logstats": logging.WARNING,
    "scrapy.middleware": logging.WARNING,
    "scrapy.extensions": logging.WARNING,
    "scrapy.addons": logging.WARNING,
    "scrapy.utils.log": logging.WARNING,
    "scrapy.crawler": logging.WARNING,
    "scrapy.statscollectors": logging.WARNING,
    "scrapy.extensions.throttle": logging.WARNING,
    "apscheduler.executors.default": logging.WARNING,
    "apscheduler.scheduler": logging.WARNING,
    "asyncio": logging.WARNING,
    "hpack": logging.WARNING,
}


class _InterceptHandler(logging.Handler):
    """Hands every standard-library log record to loguru, keeping the original logger name and level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).bind(logger_name=record.name).log(level, record.getMessage())


def _redact_record(record: Record) -> None:
    record["message"] = redact(record["message"])


def safe_defaults() -> None:
    """Before settings are read: warnings and errors only, and never a traceback's local variables.

    loguru's default handler has ``diagnose`` on, which prints the values of every variable of a
    traceback: ``os.environ``, a database URL with its password. It must never be in effect, in
    this process or in any process it starts (loguru reads these variables when imported).
    """
    os.environ["LOGURU_DIAGNOSE"] = "NO"
    os.environ["LOGURU_BACKTRACE"] = "NO"
    logger.remove()
    logger.add(sys.stderr, level="WARNING", backtrace=False, diagnose=False, format="{level}: {message}")
    logger.configure(patcher=_redact_record)


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Configure loguru once per process: human-readable lines, or JSON lines for log collectors."""
    logger.remove()
    if json_lines:
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(
            sys.stderr,
            level=level,
            backtrace=False,
            diagnose=False,
            format="<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> {message}",
        )
    logger.configure(patcher=_redact_record)
    logging.captureWarnings(True)  # warnings become log records too, so JSON output stays JSON
    root = logging.getLogger()
    handler = _InterceptHandler()
    handler.addFilter(DemoteBelow(_QUIET, show_debug=level in ("TRACE", "DEBUG")))
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if level in ("TRACE", "DEBUG") else logging.INFO)
    for name, lvl in _QUIET.items():
        logging.getLogger(name).setLevel(lvl)
