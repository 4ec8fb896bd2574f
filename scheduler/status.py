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


def probe_service(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    """Ask the local service's ``/healthz``: {"running", "healthy", "reason", "url"}."""
    import json
    import urllib.error
    import urllib.request

    target = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{target}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
            return {"running": True, "healthy": True, "reason": None, "url": url, **_known(body)}
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return {"running": True, "healthy": False, "reason": body.get("reason") or f"HTTP {exc.code}", "url": url}
    except (OSError, ValueError):
        return {"running": False, "healthy": False, "reason": None, "url": url}


def _known(body: Any) -> dict[str, Any]:
    return {"reason": body.get("reason")} if isinstance(body, dict) and body.get("reason") else {}


def format_service(service: Mapping[str, Any]) -> str:
    """One line on the running service, as its ``/healthz`` tells it."""
    if not service["running"]:
        return f"service:  not running here (no answer from {service['url']})"
    if service["healthy"]:
        return "service:  healthy"
    return f"service:  UNHEALTHY: {service['reason']}"
