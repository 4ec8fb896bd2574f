"""Service benchmark: ``haowatch run`` and its crawl worker in the steady state, and over a long run.

Part 1 (scale): N sources (default 10,000) at a 30-minute interval, their next checks spread evenly
over the next 30 minutes as in a steady state, every account already known (one request per check).
``haowatch run`` serves them for a window (default 5 minutes, after a minute of warm-up) against the
stand-in site. Reports the CPU per account check of all haowatch processes against a bare Scrapy
spider fetching and parsing the same account pages (in the same run), the scheduling lag (how late
each check was recorded after it was due) and peak memory.

Part 2 (memory): sources due every second; the worker's resident memory after 10^3 checks and after
10^5 (default).

Usage: python benchmarks/bench_service.py [--sources 10000] [--minutes 5] [--checks 100000]
Needs TEST_DATABASE_URL / DATABASE_URL (a server where it may create a database).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import migrate  # noqa: E402
from db.connection import connect  # noqa: E402
from tests.helpers import one  # noqa: E402
from tests.standin import StandinSite  # noqa: E402

CLOCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def cpu_seconds(pid: int, with_children: bool = True) -> float:
    """utime + stime (+ reaped children's) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB / 1024


def hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


class ChildPeak(threading.Thread):
    """Samples the RSS of the service's crawl processes; keeps the largest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                for child in children(self.pid):
                    self.peak = max(self.peak, rss_mib(child))
            except OSError:
                continue


def fresh_db(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(admin, dbname=name)
    with connect(url) as conn:
        migrate.upgrade(conn)
    return url


def drop_db(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def service_env(db_url: str, site: StandinSite, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(DATABASE_URL=db_url, HAOWATCH_SITE_URL=site.url, HAOWATCH_ENV_FILE="/nonexistent",
               HAOWATCH_HTTP_PORT="0", HAOWATCH_LOG_LEVEL="WARNING", **extra)
    return env


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants, live or reaped."""
    total = cpu_seconds(pid)
    for child in children(pid):
        try:
            total += tree_cpu(child)
        except OSError:
            continue
    return total


def bare_cpu_per_page(site: StandinSite, tids: list[str], env: dict[str, str]) -> float:
    """CPU seconds per account page of a bare Scrapy spider fetching and parsing them (start-up cost
    removed: the difference of two runs, of 10 % and of all the pages)."""
    from bench_crawl import run_measured  # benchmarks/ is on the path of a script run from it

    def run(count: int) -> float:
        url_file = Path(tempfile.mkstemp(suffix=".txt")[1])
        url_file.write_text("\n".join(f"{site.url}/dy/media/{tid}.html" for tid in tids[:count]), encoding="utf-8")
        try:
            return run_measured([sys.executable, str(ROOT / "benchmarks" / "bare_spider.py"), str(url_file),
                                 "--parse"], env)[1]
        finally:
            url_file.unlink()

    few, many = max(1, len(tids) // 10), len(tids)
    return (run(many) - run(few)) / (many - few)


def part_scale(admin: str, n_sources: int, minutes: float, warmup: float, baseline_pages: int) -> None:
    name = f"haowatch_bench_svc_{os.getpid()}"
    db_url = fresh_db(admin, name)
    site = StandinSite()
    site.start()
    tids = [f"T3{n:012d}" for n in range(n_sources)]
    for n, tid in enumerate(tids):
        site.add_account(tid, f"账号{n}")
        # Listed only: the article is already stored, so its page is never asked for.
        site.accounts[tid].items.append({"docid": f"M{n:07d}0514R9KQ", "title": f"标题{n}",
                                         "time": "2026-01-22 10:00", "thumbnail": None})
    with connect(db_url) as conn, conn.cursor() as cur, cur.copy("COPY sources (tid) FROM STDIN") as copy:
        for tid in tids:
            copy.write_row((tid,))
    with connect(db_url) as conn:
        # Steady state: checks spread evenly over the 30-minute interval.
        conn.execute(
            "UPDATE sources s SET next_check_at = now() + make_interval(secs => r.n * 1800.0 / %s)"
            " FROM (SELECT tid, row_number() OVER (ORDER BY tid) - 1 AS n FROM sources) r WHERE r.tid = s.tid",
            (n_sources,),
        )
        conn.execute(
            "INSERT INTO articles (docid, source_tid, url, title, content_hash)"
            " SELECT 'M' || lpad((row_number() OVER (ORDER BY tid) - 1)::text, 7, '0') || '0514R9KQ', tid, 'u', 't',"
            " 'h' FROM sources"
        )
        conn.execute("CREATE TABLE bench_schedule AS SELECT tid, next_check_at AS due_at FROM sources")
    env = service_env(db_url, site, HAOWATCH_TICK_SECONDS="10", HAOWATCH_DOWNLOAD_DELAY="0.05",
                      HAOWATCH_CONCURRENCY="2")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("haowatch")), "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = ChildPeak(proc.pid)
    sampler.start()
    time.sleep(warmup)  # start-up (imports, the worker's first claims) is not the steady state
    t0, cpu0 = time.time(), tree_cpu(proc.pid)
    time.sleep(minutes * 60)
    cpu1, t1 = tree_cpu(proc.pid), time.time()
    service_peak = hwm_mib(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    sampler.stop.set()
    with connect(db_url) as conn:
        lags = [r["lag"] for r in conn.execute(
            "SELECT extract(epoch FROM s.last_checked_at - b.due_at)::float AS lag FROM sources s"
            " JOIN bench_schedule b USING (tid)"
            " WHERE s.last_checked_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)", (t0, t1)
        )]
        due = one(conn, "SELECT count(*) AS n FROM bench_schedule WHERE due_at BETWEEN to_timestamp(%s)"
                        " AND to_timestamp(%s)", (t0, t1 - 10))["n"]
        failed = one(conn, "SELECT count(*) AS n FROM sources WHERE last_status <> 'ok'")["n"]
    drop_db(admin, name)
    bare = bare_cpu_per_page(site, tids[:baseline_pages], env)
    site.stop()
    lags.sort()
    q = statistics.quantiles(lags, n=100, method="inclusive") if len(lags) > 2 else [0.0] * 99
    per_check = (cpu1 - cpu0) / max(1, len(lags))
    elapsed = t1 - t0
    print(f"## {n_sources} sources at 30 min: {elapsed / 60:.1f}-minute window after {warmup:.0f} s of warm-up"
          " (delay 0.05 s, concurrency 2)")
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| checks done / due in window | {len(lags)} / {due} (non-ok: {failed}) |")
    print(f"| CPU of all haowatch processes (service + worker) | {(cpu1 - cpu0) / elapsed * 100:.1f} % of one core |")
    print(f"| CPU per account check: haowatch | {per_check * 1000:.2f} ms |")
    print(f"| CPU per account page: bare Scrapy fetch + parse ({baseline_pages} pages) | {bare * 1000:.2f} ms |")
    print(f"| ratio haowatch / bare (target <= 2) | {per_check / bare:.2f} |")
    print(f"| service peak RSS / worker peak RSS | {service_peak:.0f} MiB / {sampler.peak:.0f} MiB |")
    print(f"| scheduling lag p50 / p95 / max (target p95 <= 2 s) | {q[49]:.2f} s / {q[94]:.2f} s /"
          f" {max(lags or [0]):.2f} s |")


def part_memory(admin: str, checks: int, n_sources: int) -> None:
    """The worker's resident memory after 10^3 checks and after ``checks`` (sources due every second)."""
    name = f"haowatch_bench_mem_{os.getpid()}"
    db_url = fresh_db(admin, name)
    site = StandinSite()
    site.start()
    tids = [f"T4{n:012d}" for n in range(n_sources)]
    for n, tid in enumerate(tids):
        site.add_account(tid, f"账号{n}")
        site.accounts[tid].items.append({"docid": f"N{n:07d}0514R9KQ", "title": f"标题{n}",
                                         "time": "2026-01-22 10:00", "thumbnail": None})
    with connect(db_url) as conn:
        for n, tid in enumerate(tids):
            conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 second')", (tid,))
            conn.execute("INSERT INTO articles (docid, source_tid, url, title, content_hash)"
                         " VALUES (%s, %s, 'u', 't', 'h')", (f"N{n:07d}0514R9KQ", tid))
    env = service_env(db_url, site, HAOWATCH_TICK_SECONDS="10", HAOWATCH_DOWNLOAD_DELAY="0",
                      HAOWATCH_CONCURRENCY="8")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("haowatch")), "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marks: dict[int, float] = {}
    started = time.monotonic()
    try:
        for mark in sorted({1000, checks // 10, checks}):
            while len(site.requests("/dy/media/")) < mark:
                time.sleep(0.5)
            workers = children(proc.pid)
            marks[mark] = sum(rss_mib(w) for w in workers)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        site.stop()
        drop_db(admin, name)
    elapsed = time.monotonic() - started
    first, last = marks[1000], marks[checks]
    print(f"\n## The worker's memory over {checks} checks ({n_sources} sources due every second,"
          f" {checks / elapsed:.0f} checks/s)")
    print("| after checks | worker RSS (MiB) |")
    print("| --- | --- |")
    for mark, rss in marks.items():
        print(f"| {mark} | {rss:.1f} |")
    print(f"| ratio {checks} / 1000 (target within 10 %) | {last / first:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=10000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the window starts")
    parser.add_argument("--baseline-pages", type=int, default=2000)
    parser.add_argument("--checks", type=int, default=100000, help="checks of the memory part")
    parser.add_argument("--memory-sources", type=int, default=500)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    admin = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not admin:
        raise SystemExit("set TEST_DATABASE_URL to a PostgreSQL server where the benchmark may create databases")
    if not args.skip_scale:
        part_scale(admin, args.sources, args.minutes, args.warmup, min(args.baseline_pages, args.sources))
    if not args.skip_memory:
        part_memory(admin, args.checks, args.memory_sources)


if __name__ == "__main__":
    main()
