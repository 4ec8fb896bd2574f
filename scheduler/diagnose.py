"""Commands for field diagnosis: ``haowatch check`` (live, per channel) and ``haowatch captured``
(the evidence kept of pages haowatch could not use)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from scheduler.config import Settings


class DiagnoseUsageError(Exception):
    """Bad input to a diagnosis command (printed as one line, exit code 2)."""


def _target(text: str) -> tuple[str | None, str | None]:
    """(T-id, docid) named by ``text``: an account id or URL, or an article id or URL."""
    from crawler.ids import DOCID_RE, InvalidSourceId, docid_from_url, parse_tid

    value = text.strip()
    try:
        return parse_tid(value), None
    except InvalidSourceId as exc:
        docid = value if DOCID_RE.match(value) else docid_from_url(value) if "://" in value else None
        if docid:
            return None, docid
        raise DiagnoseUsageError(f"{exc}; an article id or URL also works") from None


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Live diagnosis of one account; exit 0 (primary works), 1 (only a fallback), 2 (none)."""
    from crawler.check import format_report, report_dict, run_check, save_fixtures
    from crawler.extract import ArticlePage, parse_page
    from crawler.ids import WEMEDIA_RE, article_url

    tid, docid = _target(args.source)
    wemedia_id = args.wemedia_id.strip() if args.wemedia_id else None
    if wemedia_id and not WEMEDIA_RE.match(wemedia_id):
        raise DiagnoseUsageError(f"--wemedia-id {wemedia_id!r} is not a W-id (W + 18-19 digits)")
    save_dir = Path(args.save) if args.save else None
    if save_dir is not None and save_dir.exists() and not save_dir.is_dir():
        raise DiagnoseUsageError(f"--save {args.save}: exists and is not a directory")
    proxy = settings.proxies[0] if settings.proxies else None
    if tid is None:
        # An article names its account: read it first to learn the T-id (and the W-id).
        from crawler.check import Fetcher

        fetcher = Fetcher(settings.user_agent, settings.request_timeout, proxy)
        assert docid is not None
        fetched = fetcher.get(article_url(settings.site_url, docid), "article", docid)
        page = parse_page(fetched.body, fetched.url, fetched.content_type) if fetched.status == 200 else None
        if not isinstance(page, ArticlePage) or not page.account.tid:
            why = fetched.error or (f"HTTP {fetched.status}" if fetched.status != 200 else "no account link on it")
            raise DiagnoseUsageError(f"article {docid} does not name its account ({why}); pass the T-id")
        tid, wemedia_id = page.account.tid, wemedia_id or page.account.wemedia_id
    report, fetcher = run_check(tid, site_url=settings.site_url, list_api_base=settings.list_api_url,
                                app_api_base=settings.app_api_url, user_agent=settings.user_agent,
                                timeout=settings.request_timeout, proxy=proxy, wemedia_id=wemedia_id,
                                pause=min(settings.download_delay, 5.0))
    if args.json:
        print(json.dumps(report_dict(report), ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    if save_dir is not None:
        written = save_fixtures(fetcher, save_dir, tid)
        if not args.json:
            print(f"saved {len(written)} responses as fixture cases under {save_dir}")
    return report.exit_code


def _case_name(page: Any) -> str:
    stamp = page.captured_at.strftime("%Y%m%d_%H%M%S")
    return re.sub(r"[^A-Za-z0-9_]+", "_", f"captured_{page.id}_{page.reason}_{stamp}")


def cmd_captured_list(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    """List kept evidence, newest first."""
    from db.captured import list_captured

    if not 1 <= args.limit <= 100000:
        raise DiagnoseUsageError("--limit must be between 1 and 100000")
    rows = list_captured(conn, args.reason, args.limit)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, default=str, indent=2))
        return 0
    if not rows:
        print("no captured pages")
        return 0
    for r in rows:
        print(f"{r['id']:>6}  {r['captured_at'].astimezone().strftime('%Y-%m-%d %H:%M:%S')}  {r['reason']:<12}"
              f" {r['page_type']:<8} HTTP {r['status'] if r['status'] is not None else '-':<4}"
              f" {r['body_size']:>8} B  {r['url']}")
        if r["detail"]:
            print(f"        {r['detail']}")
    return 0


def cmd_captured_export(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    """Write kept evidence as fixture cases ``DIR/<type>/<case>/{page.html,meta.json,expected.json}``."""
    from crawler.channels import parse_as
    from crawler.extract import to_dict
    from db.captured import load_captured

    if not 1 <= args.limit <= 100000:
        raise DiagnoseUsageError("--limit must be between 1 and 100000")
    directory = Path(args.dir)
    if directory.exists() and not directory.is_dir():
        raise DiagnoseUsageError(f"{args.dir}: exists and is not a directory")
    pages = load_captured(conn, args.id or None, args.reason, args.limit)
    for page in pages:
        folder = directory / page.page_type / _case_name(page)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "page.html").write_bytes(page.body)
        content_type = next((v for k, v in page.headers.items() if k.lower() == "content-type"), None)
        meta = {"url": page.url, "content_type": content_type, "status": page.status, "headers": page.headers,
                "tid": page.source_tid, "page_type": page.page_type, "reason": page.reason, "detail": page.detail,
                "captured_at": page.captured_at.isoformat(), "source": f"haowatch captured export (id {page.id})"}
        (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        # What haowatch extracts today: edit it into the correct expectation, then fix the parser.
        result = to_dict(parse_as(page.page_type, page.body, page.url, content_type, page.source_tid))
        (folder / "expected.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n",
                                              encoding="utf-8")
        print(folder)
    print(f"exported {len(pages)} captured page(s) to {directory}")
    return 0
