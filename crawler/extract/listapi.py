"""The JSON list endpoint (``/v2/article/list.do``) used to walk an account's older history."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from crawler.extract.types import AccountPage, ListedItem, UnexpectedPage
from crawler.ids import DOCID_RE, canonical_article_url

_BEIJING = timezone(timedelta(hours=8))
# What PostgreSQL text cannot hold (NUL), what cannot be encoded at all (a lone surrogate: JSON
# allows "\ud800"), and control characters that would reach terminals and logs.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_BLANKS = re.compile(r"[\t\n]+")


def _text(value: object) -> tuple[str | None, bool]:
    """A cleaned string field and whether cleaning changed it; None for anything not a string."""
    if not isinstance(value, str):
        return None, False
    cleaned = _BLANKS.sub(" ", _UNSTORABLE.sub("", value)).strip()
    return cleaned or None, cleaned != value.strip()


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
    return parse_list_api_counted(body, tid)[0]


def parse_list_api_counted(body: bytes | str, tid: str) -> tuple[AccountPage | UnexpectedPage, int, int]:
    """:func:`parse_list_api`, plus how many items were cleaned (NUL, lone surrogates, control
    characters removed from their text) and how many were skipped (no usable docid): one bad item
    never costs the rest of the listing."""
    cleaned_items = skipped = 0
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return UnexpectedPage(reason="list API answered with something that is not JSON"), 0, 0
    except RecursionError:  # absurdly deep nesting
        return UnexpectedPage(reason="list API JSON is nested too deeply"), 0, 0
    if not isinstance(data, dict):
        return UnexpectedPage(reason="list API JSON is not an object"), 0, 0
    payload = data.get("data")
    if payload is None:
        return AccountPage(tid=tid, name=None, items=[]), 0, 0
    entries = payload.get("list") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        return UnexpectedPage(reason="list API JSON has no data.list"), 0, 0
    items: list[ListedItem] = []
    name: str | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            skipped += 1
            continue
        raw_docid = entry.get("docid") or entry.get("postid")
        docid = raw_docid.strip() if isinstance(raw_docid, str) else ""
        if not DOCID_RE.match(docid):
            skipped += 1
            continue
        source, dirty_source = _text(entry.get("source"))
        title, dirty_title = _text(entry.get("title"))
        thumbnail, dirty_thumbnail = _text(entry.get("imgsrc"))
        ptime, _ = _text(entry.get("ptime"))
        cleaned_items += dirty_source or dirty_title or dirty_thumbnail
        name = name or source
        items.append(
            ListedItem(
                item_type="article",
                id=docid,
                url=canonical_article_url(docid),
                title=title,
                published_at=_ptime(ptime),
                thumbnail=thumbnail,
            )
        )
    return AccountPage(tid=tid, name=name, items=items), cleaned_items, skipped
