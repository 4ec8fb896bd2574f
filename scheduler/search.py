"""``haowatch search QUERY [--source TID] [--since DATE] [--limit N] [--json]``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from crawler.ids import InvalidSourceId, parse_tid
from db.search import DEFAULT_LIMIT, search_articles

MAX_LIMIT = 10_000


def add_search_parser(sub: Any, func: Callable[..., int]) -> None:
    """Register the ``search`` subcommand."""
    p = sub.add_parser("search", help="find articles whose title or body contains a phrase (Chinese or not)")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--source", metavar="TID", help="only this account's articles (T-id or account URL)")
    p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE (YYYY-MM-DD[ HH:MM])")
    p.add_argument("--limit", metavar="N", default=str(DEFAULT_LIMIT),
                   help=f"at most N results, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=func)


def _since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date (YYYY-MM-DD or YYYY-MM-DD HH:MM)") from None
    return value if value.tzinfo else value.astimezone()  # a bare date means local time


def _limit(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"--limit {text!r} is not a whole number") from None
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"--limit must be between 1 and {MAX_LIMIT}, not {value}")
    return value


def run_search(args: argparse.Namespace, settings: Any, db: Callable[..., Any], json_default: Callable[..., Any],
               print_table: Callable[[list[list[str]], list[str]], None], usage: type[Exception]) -> int:
    """Validate the arguments, run ``search_articles`` and print the hits."""
    query = args.query.strip()
    if not query:
        raise usage("the search query is empty")
    if "\x00" in query or len(query) > 500:
        raise usage("the search query must be at most 500 characters, without NUL")
    try:
        limit = _limit(args.limit)
        since = _since(args.since) if args.since is not None else None
        source = parse_tid(args.source) if args.source is not None else None
    except (ValueError, InvalidSourceId) as exc:
        raise usage(str(exc)) from None
    with db(settings) as conn:
        hits = search_articles(conn, query, limit=limit, source_tid=source, since=since)
    if args.json:
        print(json.dumps([asdict(h) for h in hits], ensure_ascii=False, default=json_default, indent=2))
        return 0
    rows = [[h.published_at.astimezone().strftime("%Y-%m-%d %H:%M") if h.published_at else "-",
             h.source_tid or "-", h.docid, (h.title or "-")[:60]] for h in hits]
    print_table(rows, ["PUBLISHED", "SOURCE", "DOCID", "TITLE"])
    if not hits:
        print(f"no article contains {query!r}")
    return 0
