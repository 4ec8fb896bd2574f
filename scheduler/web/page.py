"""The read-only status page at ``/``: server-rendered HTML, no scripts, readable on a phone."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:0 auto;max-width:60rem;padding:.8rem;line-height:1.45;color:#1b1b1b;background:#fafafa}
h1{font-size:1.3rem;margin:.2rem 0 .6rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem;border-bottom:1px solid #ddd}
.banner{padding:.6rem .8rem;border-radius:.4rem;margin:.4rem 0;font-weight:600}
.ok{background:#e5f5e8;color:#14532d}.bad{background:#fde8e8;color:#7f1d1d}
.warn{background:#fff4d6;color:#713f12}
.summary{display:flex;flex-wrap:wrap;gap:.4rem}.summary span{background:#fff;border:1px solid #ddd;
border-radius:.4rem;padding:.25rem .55rem}
.table{width:100%;overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;background:#f0f0f0}tr.failing td{background:#fdecec}tr.degraded td{background:#fff7e0}
tr.paused td{color:#777}.tag{font-size:.8rem;border-radius:.3rem;padding:0 .3rem;white-space:nowrap}
.tag.failing{background:#dc2626;color:#fff}.tag.degraded{background:#d97706;color:#fff}
.tag.ok{background:#16a34a;color:#fff}.tag.paused{background:#9ca3af;color:#fff}
ul.list{padding-left:1.1rem}ul.list li{margin:.25rem 0}.meta{color:#666;font-size:.85rem}
.change{background:#fff;border:1px solid #e5e5e5;border-radius:.4rem;padding:.5rem .7rem;margin:.5rem 0}
del{background:#fecaca;text-decoration:line-through}ins{background:#bbf7d0;text-decoration:none}
.diff-gap{color:#999}.diff-same{color:#555}.err{color:#991b1b;font-size:.85rem;word-break:break-all}
a{color:#1d4ed8}footer{margin-top:2rem;color:#888;font-size:.8rem}
@media (max-width:40rem){th.wide,td.wide{display:none}body{padding:.5rem}}
"""


_CHANGE_LABELS = {"edited": "edited 修改", "deleted": "deleted 删除", "restored": "restored 恢复"}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = (value - now).total_seconds()
    ago = abs(seconds)
    span = (f"{int(ago)}s" if ago < 90 else f"{int(ago // 60)}m" if ago < 5400
            else f"{int(ago // 3600)}h" if ago < 172800 else f"{int(ago // 86400)}d")
    rel = f"in {span}" if seconds > 0 else f"{span} ago"
    return f'<time datetime="{value.isoformat()}" title="{value.astimezone(UTC):%Y-%m-%d %H:%M UTC}">{rel}</time>'


def render_status_page(*, problem: str | None, overview: Mapping[str, Any] | None,
                       sources: Sequence[Mapping[str, Any]], total_sources: int,
                       articles: Sequence[Mapping[str, Any]], changes: Sequence[Mapping[str, Any]],
                       feeds_query: str = "", now: datetime | None = None) -> str:
    """The whole page. ``changes`` rows carry ``diff_html`` for edits."""
    now = now or datetime.now(UTC)
    parts = ["<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">",
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>haowatch status</title>",
             f'<link rel="alternate" type="application/atom+xml" title="haowatch: all articles"'
             f' href="/feeds/all.atom{_e(feeds_query)}">',
             f"<style>{_CSS}</style></head><body>", "<h1>haowatch 网易号 watch</h1>"]
    if problem:
        parts.append(f'<div class="banner bad" id="health">Unhealthy: {_e(problem)}</div>')
    else:
        parts.append('<div class="banner ok" id="health">Healthy: the scheduler runs and the database answers</div>')
    if overview:
        s, a = overview["sources"], overview["articles"]
        parts.append('<div class="summary">'
                     f"<span>{s['total']} sources</span><span>{s['failing']} failing</span>"
                     f"<span>{s['due']} due now</span><span>{s['paused']} paused</span>"
                     f"<span>{a['today']} new today</span><span>{a['live']} live articles</span>"
                     f"<span>{a['deleted']} deleted</span><span>{a['revisions']} revisions</span></div>")

    parts.append('<h2 id="sources">Sources</h2>')
    bad = [r for r in sources if r["health"] in ("failing", "degraded")]
    if bad:
        parts.append(f'<div class="banner warn">{len(bad)} source(s) need attention</div>')
    parts.append('<div class="table"><table><thead><tr><th>source</th><th>state</th><th>last check</th>'
                 '<th>next check</th><th>new today</th><th class="wide">error</th></tr></thead><tbody>')
    for r in sources:
        name = r["name"] or ""
        times = f" ×{r['consecutive_failures']}" if r["consecutive_failures"] else ""
        parts.append(
            f'<tr class="{_e(r["health"])}"><td><a href="/feeds/source/{_e(r["tid"])}.atom{_e(feeds_query)}">'
            f'{_e(name) or _e(r["tid"])}</a><div class="meta">{_e(r["tid"])}</div></td>'
            f'<td><span class="tag {_e(r["health"])}">{_e(r["health"])}</span>'
            f'<div class="meta">{_e(r["last_status"] or "not checked yet")}'
            f"{times}</div></td>"
            f'<td>{_when(r["last_checked_at"], now)}</td>'
            f'<td>{_when(r["next_check_at"], now) if r["enabled"] else "paused"}</td>'
            f'<td>{int(r["today"])}</td><td class="wide err">{_e((r["last_error"] or "")[:200])}</td></tr>'
        )
    parts.append("</tbody></table></div>")
    if total_sources > len(sources):
        parts.append(f'<p class="meta">showing {len(sources)} of {total_sources} sources (problems first)</p>')
    if not sources:
        parts.append('<p class="meta">No sources yet: <code>haowatch sources add T…</code></p>')

    parts.append('<h2 id="articles">Recent articles</h2><ul class="list">')
    for r in articles:
        parts.append(f'<li><a href="{_e(r["url"])}">{_e(r["title"] or r["docid"])}</a>'
                     f' <span class="meta">{_e(r["account"] or r["source_tid"] or "")} ·'
                     f' {_when(r["published_at"] or r["first_seen_at"], now)}</span></li>')
    parts.append("</ul>" + ("" if articles else '<p class="meta">No articles yet.</p>'))

    parts.append('<h2 id="changes">Recent edits and deletions</h2>')
    for r in changes:
        label = _CHANGE_LABELS.get(r["kind"], r["kind"])
        parts.append(f'<div class="change {_e(r["kind"])}"><strong>{_e(label)}</strong> '
                     f'<a href="{_e(r["url"] or "")}">{_e(r["title"] or r["docid"])}</a>'
                     f' <span class="meta">{_e(r["account"] or r["source_tid"] or "")} ·'
                     f' {_when(r["created_at"], now)}</span>')
        if r.get("diff_html"):
            parts.append(f'<div class="diff">{r["diff_html"]}</div>')
        parts.append("</div>")
    if not changes:
        parts.append('<p class="meta">No edits or deletions seen yet.</p>')
    parts.append('<footer>Feeds: <a href="/feeds/all.atom' + _e(feeds_query) + '">all (Atom)</a> ·'
                 ' <a href="/feeds/all.rss' + _e(feeds_query) + '">RSS</a> ·'
                 ' <a href="/feeds/all.json' + _e(feeds_query) + '">JSON</a> ·'
                 ' <a href="/feeds/changes.atom' + _e(feeds_query) + '">changes</a> ·'
                 ' <a href="/metrics' + _e(feeds_query) + '">metrics</a>'
                 f" · rendered {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC</footer></body></html>")
    return "\n".join(parts)
