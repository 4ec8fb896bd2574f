"""The ``haowatch`` command line.

Every refusal is one line on stderr and exit code 2; a failure of the machinery (database down,
server would not start) is one line and exit code 1. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import stat
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NoReturn

import psycopg
from psycopg.rows import DictRow

from crawler.ids import DOCID_RE, InvalidSourceId, parse_tid
from db import migrate
from db import sources as sources_db
from db.connection import connect, database_url, redact
from db.embedded import EmbeddedError
from scheduler.config import ConfigError, Settings, format_duration, load_settings, parse_duration, shorten
from scheduler.dbcli import ShellError, cmd_db_shell, cmd_db_url
from scheduler.health import StartupError
from scheduler.terminal import escape_json_text, escape_line, escape_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        if len(message) > 300:  # argparse echoes the offending argument, which may be huge
            message = message[:300] + "…"
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# --- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _database(settings: Settings, *, announce: bool = False) -> Iterator[str]:
    """A migrated database's URL (the embedded server runs around the block when no DATABASE_URL)."""
    with database_url(settings.database_url, settings.data_dir, settings.pg_bindir) as url:
        if announce and not settings.database_url:
            from loguru import logger

            from db.embedded import default_data_dir

            logger.info("embedded PostgreSQL, data in {}", (settings.data_dir or default_data_dir()).resolve())
        with connect(url) as conn:
            migrate.upgrade(conn)
        yield url


@contextlib.contextmanager
def _db(settings: Settings) -> Iterator[psycopg.Connection[DictRow]]:
    """A connection to the migrated database."""
    with _database(settings) as url, connect(url) as conn:
        yield conn


def _tid(text: str) -> str:
    try:
        return parse_tid(text)
    except InvalidSourceId as exc:
        raise UsageError(str(exc)) from None


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _docid(text: str) -> str:
    from crawler.ids import docid_from_url

    value = text.strip()
    docid = value if DOCID_RE.match(value) else docid_from_url(value)
    if not docid:
        raise UsageError(f"{shorten(text)} is not an article id (16 characters) or article URL")
    return docid


def _fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    try:
        return value.astimezone().strftime("%Y-%m-%d %H:%M")
    except (OverflowError, ValueError):  # a date at the edge of what Python holds, written by SQL
        return value.strftime("%Y-%m-%d %H:%M UTC")


def _pages(text: str) -> int:
    if not text.isascii() or not text.strip().isdigit() or not 1 <= int(text) <= 10000:
        raise argparse.ArgumentTypeError(f"{shorten(text)} is not a number of pages from 1 to 10000")
    return int(text)


def _width(text: str) -> int:
    # Chinese account names take two terminal columns per character.
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _print_table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) if rows else _width(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(headers))
    for row in rows:
        print(line(row))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


# --- commands ----------------------------------------------------------------------------------


def _wait_for_configured_database(settings: Settings) -> None:
    if settings.database_url and settings.db_wait:
        from scheduler.dbwait import wait_for_database

        wait_for_database(settings.database_url, settings.db_wait)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    _wait_for_configured_database(settings)
    with database_url(settings.database_url, settings.data_dir, settings.pg_bindir) as url, connect(url) as conn:
        applied = migrate.upgrade(conn)
        total = len(migrate.available_migrations())
    if applied:
        print(f"applied {len(applied)} migration(s): " + ", ".join(f"{m.version:03d}_{m.name}" for m in applied))
    else:
        print(f"schema is up to date ({total} migrations)")
    return EXIT_OK


def cmd_sources_add(args: argparse.Namespace, settings: Settings) -> int:
    tid = _tid(args.source)
    interval = _duration(args.interval) if args.interval is not None else settings.default_interval
    name = args.name.strip() if args.name else None
    if name is not None and (len(name) > 200 or not name.isprintable()):
        raise UsageError(f"--name {shorten(name)}: at most 200 printable characters")
    with _db(settings) as conn:
        added = sources_db.add_source(conn, tid, interval, name)
    print(f"added {tid} (every {format_duration(interval)})" if added else f"{tid} is already watched")
    return EXIT_OK


def cmd_sources_list(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        rows = sources_db.list_sources(conn)
    if args.json:
        print(escape_json_text(json.dumps(rows, ensure_ascii=False, default=_json_default, indent=2)))
        return EXIT_OK
    table = [
        [
            escape_line(cell)
            for cell in (
                r["tid"],
                r["name"] or "-",
                format_duration(r["interval_seconds"]),
                "yes" if r["enabled"] else "paused",
                _fmt_time(r["next_check_at"]) if r["enabled"] else "-",
                _fmt_time(r["last_checked_at"]),
                r["last_status"] or "-",
                str(r["consecutive_failures"]),
            )
        ]
        for r in rows
    ]
    _print_table(table, ["TID", "NAME", "EVERY", "ENABLED", "NEXT CHECK", "LAST CHECK", "STATUS", "FAILS"])
    return EXIT_OK


def _source_update(action: Callable[[psycopg.Connection[DictRow], str], bool], verb: str) -> Callable[..., int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        tid = _tid(args.source)
        with _db(settings) as conn:
            if not action(conn, tid):
                raise UsageError(f"{tid} is not a watched source")
        print(f"{verb} {tid}")
        return EXIT_OK

    return run


def cmd_sources_release(args: argparse.Namespace, settings: Settings) -> int:
    tid = _tid(args.source)
    with _db(settings) as conn:
        try:
            owner = sources_db.release_claim(conn, tid)
        except LookupError:
            raise UsageError(f"{tid} is not a watched source") from None
    print(f"released {tid} (was claimed by {escape_line(owner)})" if owner else f"{tid} was not claimed")
    return EXIT_OK


def cmd_sources_set_interval(args: argparse.Namespace, settings: Settings) -> int:
    tid = _tid(args.source)
    interval = _duration(args.interval)
    with _db(settings) as conn:
        if not sources_db.set_interval(conn, tid, interval):
            raise UsageError(f"{tid} is not a watched source")
    print(f"{tid} now checked every {format_duration(interval)}")
    return EXIT_OK


def _read_page_file(name: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a regular file; a directory, device or FIFO is named as such."""
    shown = shorten(name)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{shown}: {exc.strerror}") from None
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            raise UsageError(f"{shown} is {kind}, not a saved page (use - to read standard input)")
    try:
        with open(name, "rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{shown}: {exc.strerror}") from None


def parse_tid_in(url: str | None) -> str | None:
    """The T-id inside a URL (app list URLs carry it), else None."""
    import re

    match = re.search(r"T\d{13}", url or "")
    return match.group(0) if match else None


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    from crawler.extract import parse_page, to_dict

    limit = settings.max_response_bytes
    if args.file == "-":
        body = sys.stdin.buffer.read(limit + 1)
        source = "standard input"
    else:
        body = _read_page_file(args.file, limit)
        source = shorten(args.file)
    if len(body) > limit:
        raise UsageError(f"{source} is larger than {limit} bytes (HAOWATCH_MAX_RESPONSE_SIZE): refused")
    if args.type in ("listapi", "applist"):
        from crawler.channels import parse_as

        tid = _tid(args.tid) if args.tid else (parse_tid_in(args.url) or "")
        result = parse_as(args.type, body, args.url, args.content_type, tid)
    else:
        result = parse_page(body, url=args.url, content_type=args.content_type)
    print(json.dumps(to_dict(result), ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_crawl(args: argparse.Namespace, settings: Settings) -> int:
    from crawler.runner import run_crawl

    tids = [_tid(t) for t in args.sources]
    with _database(settings) as url:
        if tids:
            with connect(url) as conn:
                missing = [t for t in tids if not sources_db.source_exists(conn, t)]
            if missing:
                raise UsageError(f"not a watched source: {', '.join(missing)} (add it with `haowatch sources add`)")
        summary = run_crawl(settings.crawl_options(), url, tids=tids or None)
        every_source_failed = False
        if summary.run_id is not None and summary.sources:
            from db import runs as runs_db

            with connect(url) as conn:
                every_source_failed = runs_db.sources_succeeded(conn, summary.run_id) == 0
    print(summary.line())
    if every_source_failed:
        print(f"haowatch: every source failed ({summary.sources}): see `haowatch status`", file=sys.stderr)
    return EXIT_OK if summary.ran and not every_source_failed else EXIT_FAILED


def cmd_refetch(args: argparse.Namespace, settings: Settings) -> int:
    from crawler.runner import run_refetch

    docids = [_docid(d) for d in args.docids]
    with _database(settings) as url:
        summary = run_refetch(settings.crawl_options(), url, docids)
    print(summary.line())
    return EXIT_OK if summary.ran else EXIT_FAILED


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from crawler.runner import run_backfill

    tid = _tid(args.source)
    if args.pages < 1:
        raise UsageError("--pages must be at least 1")
    with _database(settings) as url:
        with connect(url) as conn:
            source = sources_db.get_source(conn, tid)
        if source is None:
            raise UsageError(f"{tid} is not a watched source (add it with `haowatch sources add`)")
        if not source["wemedia_id"]:
            raise UsageError(f"{tid} has no W-id yet: run `haowatch crawl {tid}` first, backfill needs it")
        summary = run_backfill(settings.crawl_options(), url, tid, args.pages)
        if summary.ran:
            from db import channels as channels_db

            with connect(url) as conn:
                closed = channels_db.close_gaps(conn, tid)
            if closed:
                print(f"closed {closed} recorded gap(s) of {tid}")
    print(summary.line())
    return EXIT_OK if summary.ran else EXIT_FAILED


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from crawler.runner import CLEAN_WORKER_EXITS, run_worker

    owner = args.owner or f"{socket.gethostname()}:{os.getpid()}:worker"
    if not owner.isprintable() or len(owner) > 200:
        raise UsageError(f"--owner {shorten(owner)}: at most 200 printable characters")
    with _database(settings) as url:
        reason = run_worker(settings.crawl_options(), url, owner=owner, parent_pid=args.parent,
                            sources_per_claim=settings.sources_per_crawl)
    clean = reason in CLEAN_WORKER_EXITS or reason.startswith("recycle")
    print(f"worker {owner} stopped: {reason}", file=sys.stderr)
    return EXIT_OK if clean else EXIT_FAILED


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from scheduler.service import run_service

    _wait_for_configured_database(settings)
    with _database(settings, announce=True) as url:
        return run_service(settings, url)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from db.status import overview
    from scheduler.status import format_overview, format_service, probe_service

    with _db(settings) as conn:
        data = overview(conn)
    service = probe_service(settings.http_host, settings.http_port)
    if args.json:
        print(escape_json_text(json.dumps({**data, "service": service}, ensure_ascii=False, default=_json_default,
                                          indent=2)))
    else:
        print(escape_text(format_service(service)))
        print(escape_text(format_overview(data)))
    return EXIT_OK


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from scheduler.search import run_search

    return run_search(args, settings, _db, _json_default, _print_table, UsageError)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from scheduler.diagnose import DiagnoseUsageError
    from scheduler.diagnose import cmd_check as run

    try:
        return run(args, settings)
    except DiagnoseUsageError as exc:
        raise UsageError(str(exc)) from None


def _captured(name: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from scheduler import diagnose

        with _db(settings) as conn:
            try:
                return int(getattr(diagnose, name)(args, settings, conn))
            except diagnose.DiagnoseUsageError as exc:
                raise UsageError(str(exc)) from None

    return run


# --- parser ------------------------------------------------------------------------------------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("haowatch")
    except PackageNotFoundError:
        return "unknown"



def build_parser() -> argparse.ArgumentParser:
    """The full ``haowatch`` argument parser."""
    parser = _Parser(prog="haowatch", description="Watch NetEase Hao (网易号) accounts into PostgreSQL.")
    parser.add_argument("--version", action="version", version=f"haowatch {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p_run = sub.add_parser("run", help="run the service: scheduler, crawls, health endpoint")
    p_run.set_defaults(func=cmd_run)

    p_worker = sub.add_parser("worker", help="run one continuous crawl worker (`run` supervises one itself)")
    p_worker.add_argument("--owner", help="the name its claims carry (default: host:pid:worker)")
    p_worker.add_argument("--parent", type=int, metavar="PID", help="stop when this process is gone")
    p_worker.set_defaults(func=cmd_worker)

    p_db = sub.add_parser("db", help="database schema")
    db_sub = p_db.add_subparsers(dest="db_command", required=True, parser_class=_Parser, metavar="ACTION")
    db_sub.add_parser("upgrade", help="apply pending migrations").set_defaults(func=cmd_db_upgrade)
    p_shell = db_sub.add_parser("shell", help="open psql on the database in use (embedded or DATABASE_URL)")
    p_shell.add_argument("psql_args", nargs="*", metavar="-- PSQL_ARGS", help="passed to psql, after --")
    p_shell.set_defaults(func=cmd_db_shell)
    p_url = db_sub.add_parser("url", help="print a connection URL of the database in use")
    p_url.add_argument("--show-secret", action="store_true", help="include the password")
    p_url.set_defaults(func=cmd_db_url)

    p_src = sub.add_parser("sources", help="manage watched accounts")
    s_sub = p_src.add_subparsers(dest="sources_command", required=True, parser_class=_Parser, metavar="ACTION")
    p_add = s_sub.add_parser("add", help="watch an account (T-id or account URL)")
    p_add.add_argument("source", metavar="ID_OR_URL")
    p_add.add_argument("--interval", help="how often to check, e.g. 90s, 15m, 2h (default 30m)")
    p_add.add_argument("--name", help="a label for the account")
    p_add.set_defaults(func=cmd_sources_add)
    p_list = s_sub.add_parser("list", help="list watched accounts")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.set_defaults(func=cmd_sources_list)
    for name, func, help_text in (
        ("remove", _source_update(sources_db.remove_source, "removed"), "stop watching (articles are kept)"),
        ("pause", _source_update(lambda c, t: sources_db.set_enabled(c, t, False), "paused"), "pause checks"),
        ("resume", _source_update(lambda c, t: sources_db.set_enabled(c, t, True), "resumed"), "resume checks"),
    ):
        p = s_sub.add_parser(name, help=help_text)
        p.add_argument("source", metavar="ID_OR_URL")
        p.set_defaults(func=func)
    p_rel = s_sub.add_parser("release", help="release a stuck claim on an account (its replica died or hung)")
    p_rel.add_argument("source", metavar="ID_OR_URL")
    p_rel.set_defaults(func=cmd_sources_release)
    p_int = s_sub.add_parser("set-interval", help="change how often an account is checked")
    p_int.add_argument("source", metavar="ID_OR_URL")
    p_int.add_argument("interval", metavar="DURATION")
    p_int.set_defaults(func=cmd_sources_set_interval)

    p_parse = sub.add_parser("parse", help="print what haowatch extracts from a saved page, as JSON")
    p_parse.add_argument("file", metavar="FILE", help="saved HTML page, or - for standard input")
    p_parse.add_argument("--url", help="the page's URL (helps classify and canonicalise)")
    p_parse.add_argument("--content-type", help="the HTTP Content-Type header, for its charset")
    p_parse.add_argument("--type", choices=("page", "listapi", "applist"), default="page",
                         help="page (HTML, the default) or a JSON list channel answer")
    p_parse.add_argument("--tid", help="the account a JSON list answer belongs to")
    p_parse.set_defaults(func=cmd_parse)

    p_crawl = sub.add_parser("crawl", help="crawl the given sources (default: all enabled) once")
    p_crawl.add_argument("sources", nargs="*", metavar="TID")
    p_crawl.set_defaults(func=cmd_crawl)

    p_refetch = sub.add_parser("refetch", help="download given articles again (revisions, deletions)")
    p_refetch.add_argument("docids", nargs="+", metavar="DOCID")
    p_refetch.set_defaults(func=cmd_refetch)

    p_back = sub.add_parser("backfill", help="walk an account's older history through the list API")
    p_back.add_argument("source", metavar="TID")
    p_back.add_argument("--pages", type=_pages, default=5, help="how many pages of 10 items (default 5)")
    p_back.set_defaults(func=cmd_backfill)

    from scheduler.search import add_search_parser

    add_search_parser(sub, cmd_search)


    p_check = sub.add_parser("check", help="live diagnosis of one account on every discovery channel")
    p_check.add_argument("source", metavar="ID_OR_URL", help="T-id, account URL, or an article id or URL")
    p_check.add_argument("--save", metavar="DIR", help="write every raw response as a fixture case under DIR")
    p_check.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_check.add_argument("--wemedia-id", help="the account's W-id, when no article can be read")
    p_check.set_defaults(func=cmd_check)

    p_cap = sub.add_parser("captured", help="evidence kept of pages that were unexpected, unparsable or blocked")
    c_sub = p_cap.add_subparsers(dest="captured_command", required=True, parser_class=_Parser, metavar="ACTION")
    reasons = ("unexpected", "parse_failed", "blocked")
    p_clist = c_sub.add_parser("list", help="list captured pages, newest first")
    p_clist.add_argument("--reason", choices=reasons)
    p_clist.add_argument("--limit", type=int, default=100)
    p_clist.add_argument("--json", action="store_true")
    p_clist.set_defaults(func=_captured("cmd_captured_list"))
    p_cexp = c_sub.add_parser("export", help="write captured pages as tests/fixtures/<type>/<case>/ cases")
    p_cexp.add_argument("dir", metavar="DIR")
    p_cexp.add_argument("--reason", choices=reasons)
    p_cexp.add_argument("--id", type=int, action="append", help="only this captured page (repeatable)")
    p_cexp.add_argument("--limit", type=int, default=1000)
    p_cexp.set_defaults(func=_captured("cmd_captured_export"))

    p_status = sub.add_parser("status", help="sources due, failing and paused; last crawl; articles today")
    p_status.add_argument("--json", action="store_true")
    p_status.set_defaults(func=cmd_status)

    from scheduler.cli_outputs import add_parsers

    add_parsers(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``haowatch`` console script."""
    from scheduler.logs import safe_defaults

    safe_defaults()
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        from scheduler.logs import setup_logging

        setup_logging(settings.log_level, settings.log_json)
        code: int = args.func(args, settings)
        return code
    except UsageError as exc:
        print(f"haowatch: {escape_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"haowatch: configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StartupError as exc:
        print(f"haowatch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ShellError as exc:
        print(f"haowatch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except EmbeddedError as exc:
        print(f"haowatch: embedded database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["connection failed"])[0]
        print(f"haowatch: database unavailable: {redact(first)}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"haowatch: database error: {redact(first)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("haowatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: users get one line, never a traceback
        from loguru import logger

        logger.opt(exception=exc).debug("unexpected error")
        print(f"haowatch: internal error: {type(exc).__name__}: {redact(str(exc))[:300]}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
