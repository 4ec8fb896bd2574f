"""``/metrics`` through prometheus_client: the overview of the database and the service's own counters.

A custom collector builds the metric families afresh on each scrape (the numbers live in the
database, shared by every replica), in a registry of its own so nothing global leaks in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _gauge(name: str, help_text: str, value: float | None = None, labels: Mapping[str, float] | None = None,
           label: str = "") -> GaugeMetricFamily:
    if labels is None:
        return GaugeMetricFamily(f"haowatch_{name}", help_text, value=float(value or 0))
    family = GaugeMetricFamily(f"haowatch_{name}", help_text, labels=[label])
    for key, v in labels.items():
        family.add_metric([key], float(v))
    return family


def _counter(name: str, help_text: str, value: float | None = None, labels: Mapping[str, float] | None = None,
             label: str = "") -> CounterMetricFamily:
    # prometheus_client appends _total to counter names itself: give it the name without.
    base = f"haowatch_{name}".removesuffix("_total")
    if labels is None:
        return CounterMetricFamily(base, help_text, value=float(value or 0))
    family = CounterMetricFamily(base, help_text, labels=[label])
    for key, v in labels.items():
        family.add_metric([key], float(v))
    return family


class OverviewCollector(Collector):
    """Yields every haowatch series from ``snapshot()``: (overview or None, service numbers, health reason)."""

    def __init__(self, snapshot: Callable[[], tuple[Mapping[str, Any] | None, Mapping[str, float], str | None,
                                                    Mapping[str, int] | None]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        data, service, problem, deliveries = self.snapshot()
        yield _gauge("up", "1 when the database answered this scrape", 1.0 if data else 0.0)
        yield _gauge("scheduler_running", "1 while the scheduler runs", service.get("scheduler_running", 0))
        yield _gauge("healthy", "1 when /healthz answers 200", 0.0 if problem else 1.0)
        yield _gauge("unhealthy_reason", "1 for the reason /healthz answers 503 (absent when healthy)",
                     labels={problem: 1.0} if problem else {}, label="reason")
        yield _counter("service_crawls_total", "crawl processes started by this service, by result",
                       labels={k.removeprefix("crawls_"): v for k, v in service.items() if k.startswith("crawls_")},
                       label="result")
        yield _counter("notifications_total", "delivery attempts by this service's dispatcher, by result",
                       labels={k.removeprefix("notify_"): v for k, v in service.items() if k.startswith("notify_")},
                       label="result")
        if deliveries is not None:
            yield _gauge("event_deliveries", "event deliveries by state (pending, delivered, dead)",
                         labels=deliveries, label="state")
        if not data:
            return
        s, c, a = data["sources"], data["crawls"], data["articles"]
        yield _gauge("sources", "sources by state",
                     labels={k: s[k] for k in ("enabled", "paused", "due", "failing", "claimed")}, label="state")
        yield _gauge("sources_by_status", "enabled sources by the status of their last check",
                     labels=data["sources_by_status"], label="status")
        yield _gauge("due_backlog", "enabled sources whose check is due now", s["due"])
        yield _gauge("schedule_lag_seconds", "how late the most overdue check is", s["oldest_due_seconds"])
        yield _gauge("last_success_timestamp_seconds", "when a source was last checked successfully",
                     s["last_success_ts"] or 0)
        yield _counter("crawls_total", "crawls recorded in crawl_runs", c["crawls"])
        yield _counter("crawls_aborted_total", "crawls that did not finish", c["aborted"])
        yield _counter("requests_total", "HTTP requests made by crawls", c["requests"])
        yield _counter("new_articles_total", "articles stored for the first time", c["new_articles"])
        yield _counter("updated_articles_total", "articles whose content changed", c["updated_articles"])
        yield _counter("deleted_articles_total", "articles found deleted", c["deleted_articles"])
        yield _counter("errors_total", "errors counted by crawls", c["errors"])
        yield _gauge("articles", "stored articles by state", labels={"live": a["live"], "deleted": a["deleted"]},
                     label="state")
        yield _gauge("articles_today", "articles first seen today", a["today"])
        yield _gauge("source_gaps_open", "sources with an unclosed gap (articles may be missing)",
                     len(data.get("gaps", [])))
        yield _gauge("captured_pages", "responses kept as evidence, by reason",
                     labels=data.get("captured_pages", {}), label="reason")


def render(snapshot: Callable[[], tuple[Mapping[str, Any] | None, Mapping[str, float], str | None,
                                        Mapping[str, int] | None]]) -> bytes:
    """The Prometheus text exposition of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverviewCollector(snapshot))
    return generate_latest(registry)
