"""Outputs benchmark: event delivery latency (commit → webhook receiver) and feed render time.

Part 1 (delivery): a real ``haowatch run`` (its dispatcher) and a json:// subscription to a receiver
on 127.0.0.1. Articles are inserted one transaction each, paced (default 200 at 20 per second), then
a burst (default 300 in quick succession). Latency = arrival at the receiver − the commit's return.
Baseline in the same run: the bare LISTEN/NOTIFY round trip (commit → a listening connection), the
floor any PostgreSQL-woken dispatcher sits on. Target: p95 ≤ 5 s.

Part 2 (feeds): 1,000 stored articles with realistic bodies (a saved article page's HTML); the time
to render /feeds/all.{atom,rss,json}?limit=1000 (render only, and the whole HTTP GET with its query).
Baseline: json.dumps of the same items. Target: ≤ 100 ms per feed render.

Usage: python benchmarks/bench_outputs.py [--paced 200] [--burst 300] [--feed-items 1000]
Needs TEST_DATABASE_URL / DATABASE_URL (a server where it may create a database).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import migrate  # noqa: E402
from db import web as web_db  # noqa: E402
from db.connection import connect  # noqa: E402
from scheduler.web import feeds  # noqa: E402
from tests.receiver import Receiver, free_port  # noqa: E402

HAOWATCH = str(Path(sys.executable).with_name("haowatch"))
FIXTURE = ROOT / "tests" / "fixtures" / "article" / "dy_2024_J22CN60P0514R9KQ" / "expected.json"


def docid(n: int) -> str:
    return f"B{n:07d}0514R9KQ"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    url = make_conninfo(admin_url, dbname=name)
    with connect(url) as conn:
        migrate.upgrade(conn)
    return url


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def notify_baseline(url: str, n: int) -> list[float]:
    """Commit → NOTIFY received by a listening connection, n times."""
    got: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("LISTEN bench_channel")
            ready.set()
            for note in conn.notifies(timeout=30, stop_after=n):
                got[note.payload] = time.time()

    thread = threading.Thread(target=listen)
    thread.start()
    ready.wait()
    sent: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(n):
            conn.execute("SELECT pg_notify('bench_channel', %s)", (str(i),))
            sent[str(i)] = time.time()
            time.sleep(0.005)
    thread.join()
    return [got[k] - sent[k] for k in sent if k in got]


def bench_delivery(url: str, paced: int, burst: int, rate: float) -> dict[str, object]:
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    rx = Receiver().start()
    original = rx.received

    class Recorder(list):  # type: ignore[type-arg]
        def append(self, item: object) -> None:  # called under the receiver's lock on each post
            now = time.time()
            if isinstance(item, dict) and isinstance(item.get("event"), dict):
                key = item["event"].get("docid")
                with lock:
                    arrivals.setdefault(key, now)
            super().append(item)

    rx.received = Recorder(original)
    with connect(url) as conn:
        conn.execute("INSERT INTO subscriptions (url, events) VALUES (%s, ARRAY['new'])", (rx.url(),))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(DATABASE_URL=url, HAOWATCH_ENV_FILE="/nonexistent", HAOWATCH_SITE_URL="http://127.0.0.1:9",
               HAOWATCH_HTTP_PORT=str(free_port()), HAOWATCH_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([HAOWATCH, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    committed: dict[str, float] = {}
    try:
        time.sleep(4)  # the service is up and listening
        with connect(url) as conn:
            for phase, count, pause in (("paced", paced, 1.0 / rate), ("burst", burst, 0.0)):
                start = len(committed)
                for i in range(start, start + count):
                    d = docid(i)
                    conn.execute("INSERT INTO articles (docid, url, title, content_hash, body_text)"
                                 " VALUES (%s, %s, %s, %s, %s)",
                                 (d, f"https://www.163.com/dy/article/{d}.html", f"{phase} {i}", f"h{i}", "正文"))
                    committed[d] = time.time()
                    if pause:
                        time.sleep(pause)
        deadline = time.time() + 120
        while time.time() < deadline:
            with lock:
                if len(arrivals) >= len(committed):
                    break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        rx.stop()
    results: dict[str, object] = {}
    ids = list(committed)
    for phase, chosen in (("paced", ids[:paced]), ("burst", ids[paced:])):
        lat = [arrivals[d] - committed[d] for d in chosen if d in arrivals]
        results[phase] = {"events": len(chosen), "arrived": len(lat), "p50_s": round(pct(lat, 0.5), 4),
                          "p95_s": round(pct(lat, 0.95), 4), "max_s": round(max(lat), 4)} if lat else {}
    return results


def bench_feeds(url: str, n: int, repeats: int) -> dict[str, object]:
    sample = json.loads(FIXTURE.read_text(encoding="utf-8"))
    body_html, body_text = sample["body_html"], sample["body_text"]
    now = datetime.now(UTC)
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO articles (docid, source_tid, url, title, content_hash, body_text, body_html, images,"
            " published_at, first_seen_at) VALUES (%s, 'T1536566896022', %s, %s, %s, %s, %s, '[]', %s, %s)",
            [(docid(100000 + i), f"https://www.163.com/dy/article/{docid(100000 + i)}.html", f"文章 {i}",
              f"f{i}", body_text, body_html, now - timedelta(minutes=i), now - timedelta(minutes=i))
             for i in range(n)],
        )
    with connect(url) as conn:
        rows = web_db.feed_articles(conn, n)
    items = [feeds.article_item(r) for r in rows]
    meta = feeds.FeedMeta("urn:haowatch:feed:all", "haowatch", "http://127.0.0.1/feeds/all.atom",
                          "https://www.163.com", "all")
    out: dict[str, object] = {"items": len(items), "body_kib_each": round(len(body_html.encode()) / 1024, 1)}

    def timed(fn: object) -> float:
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            runs.append(time.perf_counter() - t)
        return statistics.median(runs) * 1000

    baseline = timed(lambda: json.dumps([i.content_html for i in items], ensure_ascii=False).encode())
    out["baseline_json_dumps_ms"] = round(baseline, 1)
    from scheduler.health import HealthServer

    class Svc:
        healthy = True

        def __init__(self) -> None:
            self.counters: dict[str, float] = {}

    port = free_port()
    server = HealthServer("127.0.0.1", port, url, Svc())
    server.start()
    try:
        for fmt in ("atom", "rss", "json"):
            render_ms = timed(lambda fmt=fmt: feeds.render(fmt, meta, items))

            def fetch(fmt: str = fmt) -> None:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds/all.{fmt}?limit={n}", timeout=60) as r:
                    r.read()

            http_ms = timed(fetch)
            size = len(feeds.render(fmt, meta, items))
            out[fmt] = {"render_ms": round(render_ms, 1), "http_get_ms": round(http_ms, 1),
                        "render_vs_baseline": round(render_ms / baseline, 2), "mib": round(size / 2**20, 2)}
    finally:
        server.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="paced events per second")
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--feed-items", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    admin = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not admin:
        print("bench_outputs: set TEST_DATABASE_URL to a server where a database may be created", file=sys.stderr)
        return 2
    name = f"haowatch_bench_outputs_{os.getpid()}"
    url = fresh_database(admin, name)
    try:
        floor = notify_baseline(url, 200)
        delivery = bench_delivery(url, args.paced, args.burst, args.rate)
        feed = bench_feeds(url, args.feed_items, args.repeats)
    finally:
        drop_database(admin, name)
    report = {
        "notify_baseline": {"p50_s": round(pct(floor, 0.5), 4), "p95_s": round(pct(floor, 0.95), 4)},
        "delivery": delivery,
        "feeds": feed,
    }
    paced = delivery.get("paced") or {}
    if isinstance(paced, dict) and paced:
        report["delivery_p95_vs_target_5s"] = round(float(paced["p95_s"]) / 5.0, 3)
        report["delivery_p50_vs_notify_p50"] = round(float(paced["p50_s"]) / max(pct(floor, 0.5), 1e-6), 1)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
