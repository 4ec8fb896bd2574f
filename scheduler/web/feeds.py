"""Feeds in Atom, RSS 2.0 (both through feedgen) and JSON Feed 1.1, from plain item records.

Pure rendering: the server fetches rows, turns them into :class:`FeedItem`, and calls :func:`render`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator

FORMATS = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of any feed."""

    id: str
    title: str
    link: str
    content_html: str
    summary: str
    published: datetime
    updated: datetime
    author: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """The feed itself: its id (a URL), title, where it lives and what it is about."""

    id: str
    title: str
    self_url: str
    home_url: str
    description: str


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# XML 1.0 forbids most control characters, lone surrogates and U+FFFE/U+FFFF; a page may still carry one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _control_free(text: str) -> str:
    return _NOT_XML.sub("", text) if text else text


def _image_html(images: Iterable[str], body_html: str) -> str:
    missing = [src for src in images if src and src not in body_html]
    return "".join(f'<p><img src="{html.escape(src, quote=True)}" alt=""></p>' for src in missing)


def article_item(row: Mapping[str, Any]) -> FeedItem:
    """A feed item for a stored article: its full body HTML, images included."""
    body = row.get("body_html") or "".join(f"<p>{html.escape(p)}</p>" for p in (row.get("body_text") or "").split("\n"))
    images = row.get("images") or []
    content = body + _image_html(images, body)
    published = _aware(row.get("published_at") or row["first_seen_at"])
    updated = _aware(row.get("last_changed_at") or row.get("published_at") or row["first_seen_at"])
    return FeedItem(
        id=f"urn:haowatch:article:{row['docid']}", title=row.get("title") or row["docid"], link=row["url"],
        content_html=content, summary=(row.get("body_text") or "")[:200], published=published,
        updated=max(updated, published), author=row.get("account"),
        tags=tuple(t for t in (row.get("source_tid"),) if t),
    )


def render(fmt: str, meta: FeedMeta, items: Sequence[FeedItem]) -> bytes:
    """The feed as bytes in ``fmt`` (``atom``, ``rss`` or ``json``)."""
    if fmt == "json":
        return _json_feed(meta, items)
    fg = FeedGenerator()
    fg.id(meta.id)
    fg.title(_control_free(meta.title))
    fg.subtitle(_control_free(meta.description))
    fg.description(_control_free(meta.description))
    fg.link(href=meta.home_url, rel="alternate")
    fg.link(href=meta.self_url, rel="self")
    fg.language("zh-CN")
    fg.generator("haowatch")
    fg.updated(max((i.updated for i in items), default=datetime(2000, 1, 1, tzinfo=UTC)))
    for item in items:
        entry = fg.add_entry(order="append")
        entry.id(item.id)
        entry.guid(item.id, permalink=False)
        entry.title(_control_free(item.title))
        entry.link(href=item.link)
        entry.published(item.published)
        entry.updated(item.updated)
        entry.description(_control_free(item.summary) or _control_free(item.title))
        entry.content(_control_free(item.content_html), type="CDATA" if fmt == "rss" else "html")
        if item.author:
            entry.author(name=_control_free(item.author))
        for tag in item.tags:
            entry.category(term=tag)
    data: bytes = fg.rss_str(pretty=False) if fmt == "rss" else fg.atom_str(pretty=False)
    return data


def _json_feed(meta: FeedMeta, items: Sequence[FeedItem]) -> bytes:
    # JSON Feed 1.1 (jsonfeed.org/version/1.1): a small, fixed shape, written directly.
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": meta.title,
        "home_page_url": meta.home_url,
        "feed_url": meta.self_url,
        "description": meta.description,
        "language": "zh-CN",
        "items": [
            {
                "id": item.id,
                "url": item.link,
                "title": item.title,
                "content_html": item.content_html,
                "summary": item.summary,
                "date_published": item.published.isoformat(),
                "date_modified": item.updated.isoformat(),
                **({"authors": [{"name": item.author}]} if item.author else {}),
                **({"tags": list(item.tags)} if item.tags else {}),
            }
            for item in items
        ],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
