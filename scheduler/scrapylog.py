"""Keeps Scrapy's per-crawl boilerplate (versions, settings, enabled components, stats dump) below INFO.

Scrapy's ``configure_logging`` resets the levels of every ``scrapy.*`` logger when a crawler starts
(``dictConfig`` on the ``scrapy`` logger), so levels set beforehand do not hold. A filter on
haowatch's root handler does: records below a logger's minimum level are demoted to DEBUG, where
``HAOWATCH_LOG_LEVEL=DEBUG`` still shows them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping


class DemoteBelow(logging.Filter):
    """Demote records of the named loggers (and their children) below a minimum level to DEBUG."""

    def __init__(self, minimum: Mapping[str, int], show_debug: bool) -> None:
        super().__init__()
        # Longest names first, so "scrapy.core.engine" wins over "scrapy".
        self._rules = sorted(minimum.items(), key=lambda item: len(item[0]), reverse=True)
        self._show_debug = show_debug

    def _minimum(self, name: str) -> int:
        for prefix, level in self._rules:
            if name == prefix or name.startswith(prefix + "."):
                return level
        return logging.NOTSET

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or record.levelno >= self._minimum(record.name):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self._show_debug
