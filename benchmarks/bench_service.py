"""Service benchmark: ``haowatch run`` with many sources, and memory over many crawl cycles.

Part 1 (scale): N sources (default 10,000) at a 30-minute interval, their next checks spread evenly
over the next 30 minutes as in a steady state, every account already known (one request per check).
``haowatch run`` serves them for a window (default 5 minutes) against the stand-in site. Reports
the CPU share and peak memory of the service and its crawl processes, and the scheduling lag
(how late each check started after it was due).

Part 2 (cycles): one source at a 1-second interval; the service's own memory after crawl cycle 1
and after cycle 100; then the same 100 crawls run in-process (one reactor, Scrapy's CrawlerRunner)
for comparison: the evidence for running each crawl as a child process.

Usage: python benchmarks/bench_service.py [--sources 10000] [--minutes 5] [--cycles 100]
Needs TEST_DATABASE_URL / DATABASE_URL (a server where it may create a database).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
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


def part_scale(admin: str, n_sources: int, minutes: float) -> None:
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
    window = minutes * 60
    env = service_env(db_url, site, HAOWATCH_TICK_SECONDS="10", HAOWATCH_DOWNLOAD_DELAY="0.05",
                      HAOWATCH_CONCURRENCY="2")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("haowatch")), "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = ChildPeak(proc.pid)
    sampler.start()
    started = time.monotonic()
    time.sleep(window)
    cpu = cpu_seconds(proc.pid)
    elapsed = time.monotonic() - started
    service_peak = hwm_mib(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    sampler.stop.set()
    with connect(db_url) as conn:
        lags = [r["lag"] for r in conn.execute(
            "SELECT extract(epoch FROM s.last_checked_at - b.due_at)::float AS lag FROM sources s"
            " JOIN bench_schedule b USING (tid) WHERE s.last_checked_at IS NOT NULL"
        )]
        due = one(conn,
            "SELECT count(*) AS n FROM bench_schedule WHERE due_at <= now() - interval '10 seconds'"
        )["n"]
        failed = one(conn, "SELECT count(*) AS n FROM sources WHERE last_status <> 'ok'")["n"]
    site.stop()
    drop_db(admin, name)
    lags.sort()
    q = statistics.quantiles(lags, n=100, method="inclusive") if len(lags) > 2 else [0.0] * 99
    print(f"## {n_sources} sources at 30 min, {elapsed / 60:.1f}-minute window (tick 10 s, delay 0.05 s)")
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| checks done / due in window | {len(lags)} / {due} (non-ok: {failed}) |")
    print(f"| service CPU share (incl. crawl processes) | {cpu / elapsed * 100:.1f} % of one core |")
    print(f"| service peak RSS | {service_peak:.0f} MiB |")
    print(f"| crawl process peak RSS | {sampler.peak:.0f} MiB |")
    print(f"| scheduling lag p50 / p95 / max | {q[49]:.1f} s / {q[94]:.1f} s / {max(lags or [0]):.1f} s |")


def part_cycles(admin: str, cycles: int) -> None:
    name = f"haowatch_bench_cyc_{os.getpid()}"
    db_url = fresh_db(admin, name)
    site = StandinSite()
    site.start()
    tid = "T3999999999999"
    site.add_account(tid, "循环")
    site.publish(tid, "M99999990514R9KQ", "标题", ["正文"])
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 second')", (tid,))
    env = service_env(db_url, site, HAOWATCH_TICK_SECONDS="1", HAOWATCH_DOWNLOAD_DELAY="0")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("haowatch")), "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marks: dict[int, float] = {}
    deadline = time.monotonic() + cycles * 10
    with connect(db_url) as conn:
        while time.monotonic() < deadline:
            done = one(conn, "SELECT count(*) AS n FROM crawl_runs WHERE finished_at IS NOT NULL")["n"]
            for mark in (1, 10, cycles):
                if done >= mark and mark not in marks:
                    marks[mark] = rss_mib(proc.pid)
            if done >= cycles:
                break
            time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)

    drop_db(admin, name)
    db_url = fresh_db(admin, name)
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid, interval) VALUES (%s, interval '1 second')", (tid,))
    inproc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "inprocess_cycles.py"), str(cycles)],
                            env=service_env(db_url, site, HAOWATCH_DOWNLOAD_DELAY="0"), capture_output=True,
                            text=True, check=False)
    site.stop()
    drop_db(admin, name)
    print(f"\n## Memory over {cycles} crawl cycles (RSS, MiB)")
    print(f"| model | after cycle 1 | after cycle 10 | after cycle {cycles} |")
    print("| --- | --- | --- | --- |")
    print(f"| haowatch run (a child process per crawl): service process | {marks.get(1, 0):.0f} |"
          f" {marks.get(10, 0):.0f} | {marks.get(cycles, 0):.0f} |")
    print(inproc.stdout.strip() or f"| in-process: failed: {inproc.stderr.strip()[-300:]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=10000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-cycles", action="store_true")
    args = parser.parse_args()
    admin = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not admin:
        raise SystemExit("set TEST_DATABASE_URL to a PostgreSQL server where the benchmark may create databases")
    if not args.skip_scale:
        part_scale(admin, args.sources, args.minutes)
    if not args.skip_cycles:
        part_cycles(admin, args.cycles)


if __name__ == "__main__":
    main()
