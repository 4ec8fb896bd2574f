"""Render the service overview: as text for ``haowatch status`` and as Prometheus metrics."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "never"


def format_overview(data: Mapping[str, Any]) -> str:
    """The text of ``haowatch status``."""
    s, a, c, last = data["sources"], data["articles"], data["crawls"], data["last_crawl"]
    lines = [
        f"sources:  {s['total']} watched, {s['enabled']} enabled, {s['paused']} paused,"
        f" {s['due']} due now, {s['failing']} failing",
    ]
    if data["sources_by_status"]:
        lines.append("status:   " + ", ".join(f"{k} {v}" for k, v in data["sources_by_status"].items()))
    if last:
        lines.append(
            f"last crawl: #{last['id']} {last['kind']} {last['status']} at {_when(last['finished_at'])}:"
            f" {last['sources']} sources, {last['requests']} requests, {last['new_articles']} new,"
            f" {last['updated_articles']} updated, {last['deleted_articles']} deleted, {last['errors']} errors"
        )
    else:
        lines.append("last crawl: none yet")
    lines.append(
        f"articles: {a['today']} new today, {a['live']} live, {a['deleted']} deleted, {a['revisions']} revisions"
    )
    lines.append(f"crawls:   {c['crawls']} in all, {c['requests']} requests, {c['errors']} errors")
    if data.get("captured_pages"):
        lines.append("captured: " + ", ".join(f"{k} {v}" for k, v in data["captured_pages"].items())
                     + " (haowatch captured list)")
    for gap in data.get("gaps", []):
        lines.append(f"  ! GAP {gap['tid']} {gap['name'] or ''}: {gap['gaps']} unclosed since"
                     f" {_when(gap['last_detected_at'])}: {gap['reason']} (run `haowatch backfill {gap['tid']}`)")
    for row in data["attention"]:
        lines.append(
            f"  ! {row['tid']} {row['name'] or ''} {row['last_status']}"
            f" ({row['consecutive_failures']}x): {row['last_error'] or ''}".rstrip()
        )
    return "\n".join(lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(data: Mapping[str, Any] | None, service: Mapping[str, float]) -> str:
    """Prometheus text exposition of the overview plus the service's own counters."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP haowatch_{name} {help_text}")
        out.append(f"# TYPE haowatch_{name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(f"haowatch_{name}{{{label_text}}} {float(value):g}" if labels
                       else f"haowatch_{name} {float(value):g}")

    metric("up", "gauge", "1 when the database answered this scrape", [({}, 1.0 if data else 0.0)])
    metric("scheduler_running", "gauge", "1 while the scheduler runs", [({}, service.get("scheduler_running", 0))])
    metric("service_crawls_total", "counter", "crawl processes started by this service, by result",
           [({"result": k.removeprefix("crawls_")}, v) for k, v in service.items() if k.startswith("crawls_")])
    if data:
        s, c, a = data["sources"], data["crawls"], data["articles"]
        metric("sources", "gauge", "sources by state",
               [({"state": k}, s[k]) for k in ("enabled", "paused", "due", "failing", "claimed")])
        metric("sources_by_status", "gauge", "enabled sources by the status of their last check",
               [({"status": k}, v) for k, v in data["sources_by_status"].items()])
        metric("due_backlog", "gauge", "enabled sources whose check is due now", [({}, s["due"])])
        metric("schedule_lag_seconds", "gauge", "how late the most overdue check is",
               [({}, s["oldest_due_seconds"])])
        metric("last_success_timestamp_seconds", "gauge", "when a source was last checked successfully",
               [({}, s["last_success_ts"] or 0)])
        metric("crawls_total", "counter", "crawls recorded in crawl_runs", [({}, c["crawls"])])
        metric("crawls_aborted_total", "counter", "crawls that did not finish", [({}, c["aborted"])])
        metric("requests_total", "counter", "HTTP requests made by crawls", [({}, c["requests"])])
        metric("new_articles_total", "counter", "articles stored for the first time", [({}, c["new_articles"])])
        metric("updated_articles_total", "counter", "articles whose content changed",
               [({}, c["updated_articles"])])
        metric("deleted_articles_total", "counter", "articles found deleted", [({}, c["deleted_articles"])])
        metric("errors_total", "counter", "errors counted by crawls", [({}, c["errors"])])
        metric("articles", "gauge", "stored articles by state",
               [({"state": "live"}, a["live"]), ({"state": "deleted"}, a["deleted"])])
        metric("articles_today", "gauge", "articles first seen today", [({}, a["today"])])
        metric("source_gaps_open", "gauge", "sources with an unclosed gap (articles may be missing)",
               [({}, len(data.get("gaps", [])))])
        metric("captured_pages", "gauge", "responses kept as evidence, by reason",
               [({"reason": k}, v) for k, v in data.get("captured_pages", {}).items()])
    return "\n".join(out) + "\n"
