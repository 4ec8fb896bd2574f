"""The JSON list endpoint (``/v2/article/list.do``) used to walk an account's older history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from crawler.extract.types import AccountPage, ListedItem, UnexpectedPage
from crawler.ids import DOCID_RE, canonical_article_url

_BEIJING = timezone(timedelta(hours=8))


def _ptime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=_BEIJING)
        except ValueError:
            continue
    return None


def parse_list_api(body: bytes | str, tid: str) -> AccountPage | UnexpectedPage:
    """Parse one page of the list API into the account's listed items.

    ``{"data": null}`` (past the last page) is an AccountPage with no items; anything that is not the
    expected JSON is unexpected.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return UnexpectedPage(reason="list API answered with something that is not JSON")
    if not isinstance(data, dict):
        return UnexpectedPage(reason="list API JSON is not an object")
    payload = data.get("data")
    if payload is None:
        return AccountPage(tid=tid, name=None, items=[])
    entries = payload.get("list") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        return UnexpectedPage(reason="list API JSON has no data.list")
    items: list[ListedItem] = []
    name: str | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        docid = str(entry.get("docid") or entry.get("postid") or "").strip()
        if not DOCID_RE.match(docid):
            continue
        name = name or (entry.get("source") if isinstance(entry.get("source"), str) else None)
        items.append(
            ListedItem(
                item_type="article",
                id=docid,
                url=canonical_article_url(docid),
                title=entry.get("title") if isinstance(entry.get("title"), str) else None,
                published_at=_ptime(entry.get("ptime")),
                thumbnail=entry.get("imgsrc") if isinstance(entry.get("imgsrc"), str) else None,
            )
        )
    return AccountPage(tid=tid, name=name, items=items)
