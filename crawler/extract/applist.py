"""The news app's subscription list (``/nc/subscribe/list/<T-id>/all/<offset>-<size>.html``), by T-id.

Answers are JSON: ``{"tab_list": [...]}`` (older answers key the list by the T-id instead). Items
carry ``docid`` or ``postid``, ``title``, ``ptime`` ("YYYY-MM-DD HH:MM:SS"), ``source``, ``digest``
and ``imgsrc``; video entries carry a ``videoID``/``vid``. Pure: bytes in, typed result out.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from crawler.extract.types import AccountPage, ListedItem, UnexpectedPage
from crawler.ids import DOCID_RE, VIDEO_RE, canonical_article_url

_BEIJING = timezone(timedelta(hours=8))
_LIST_KEYS = ("tab_list", "list", "data")


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=_BEIJING)
        except ValueError:
            continue
    return None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = " ".join(value.split())
    return cleaned or None


def _entries(data: dict[str, Any], tid: str) -> list[Any] | None:
    for key in (*_LIST_KEYS, tid):
        value = data.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, dict) and isinstance(value.get("list"), list):
            return value["list"]
    return None


def _item(entry: dict[str, Any]) -> ListedItem | None:
    video = str(entry.get("videoID") or entry.get("vid") or "").strip()
    if VIDEO_RE.match(video):
        return ListedItem(item_type="video", id=video, url=f"https://www.163.com/v/video/{video}.html",
                          title=_text(entry.get("title")), published_at=_time(entry.get("ptime")),
                          thumbnail=_text(entry.get("imgsrc")))
    docid = str(entry.get("docid") or entry.get("postid") or "").strip()
    if not DOCID_RE.match(docid):
        return None
    thumbnail = _text(entry.get("imgsrc"))
    return ListedItem(item_type="article", id=docid, url=canonical_article_url(docid),
                      title=_text(entry.get("title")), published_at=_time(entry.get("ptime")),
                      thumbnail=thumbnail if thumbnail and thumbnail.startswith(("http://", "https://")) else None)


def parse_app_list(body: bytes | str, tid: str) -> AccountPage | UnexpectedPage:
    """Parse one page of the app list into the account's listed items (newest first).

    An answer with an empty list (past the end) is an AccountPage with no items; anything that is not
    the expected JSON is unexpected. Entries without a valid docid or video id are skipped.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return UnexpectedPage(reason="app list answered with something that is not JSON")
    if not isinstance(data, dict):
        return UnexpectedPage(reason="app list JSON is not an object")
    entries = _entries(data, tid)
    if entries is None:
        if not data or all(v in (None, [], {}) for v in data.values()):
            return AccountPage(tid=tid, name=None, items=[])
        return UnexpectedPage(reason="app list JSON has no tab_list")
    items: list[ListedItem] = []
    seen: set[str] = set()
    name: str | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        item = _item(entry)
        if item is None or item.id in seen:
            continue
        seen.add(item.id)
        name = name or _text(entry.get("source"))
        items.append(item)
    return AccountPage(tid=tid, name=name, items=items)
