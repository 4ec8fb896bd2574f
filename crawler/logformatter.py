"""Scrapy's item log lines, one short line each: never the item itself.

Scrapy's default formatter appends the whole item to "Dropped", "Scraped" and "Error processing"
lines; an article item holds its full body, so one dropped article became a 30 KB log record.
"""

from __future__ import annotations

from typing import Any

from scrapy import Spider
from scrapy.http import Response
from scrapy.logformatter import LogFormatter, LogFormatterResult
from twisted.python.failure import Failure

_MAX_TEXT = 300


def describe_item(item: Any) -> str:
    """A short label for an item: its type and its key (docid or T-id)."""
    key = None
    page = getattr(item, "page", None)
    for holder, attribute in ((item, "docid"), (page, "docid"), (item, "tid"), (item, "source_tid")):
        value = getattr(holder, attribute, None) if holder is not None else None
        if isinstance(value, str):
            key = value
            break
    label = type(item).__name__
    return f"{label} {key[:40]}" if key else label


def _short(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


class ShortLogFormatter(LogFormatter):
    """Scrapy's log formatter with items named, not dumped."""

    def scraped(self, item: Any, response: Response | Failure | None, spider: Spider) -> LogFormatterResult:
        result = super().scraped(item, response, spider)
        result["msg"] = "Scraped %(item)s from %(src)s"
        args = result["args"]
        source = args["src"] if isinstance(args, dict) else response  # Scrapy's own result names it "src"
        result["args"] = {"item": describe_item(item), "src": _short(source)}
        return result

    def dropped(self, item: Any, exception: BaseException, response: Response | Failure | None,
                spider: Spider) -> LogFormatterResult:
        result = super().dropped(item, exception, response, spider)
        result["msg"] = "Dropped %(item)s: %(exception)s"
        result["args"] = {"item": describe_item(item), "exception": _short(exception)}
        return result

    def item_error(self, item: Any, exception: BaseException, response: Response | Failure | None,
                   spider: Spider) -> LogFormatterResult:
        result = super().item_error(item, exception, response, spider)
        result["msg"] = "Error processing %(item)s"
        result["args"] = {"item": describe_item(item)}
        return result
