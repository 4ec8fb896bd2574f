"""Crawl throughput: haowatch's full pipeline into PostgreSQL versus a bare Scrapy spider, same pages.

Serves a few thousand stand-in articles on 127.0.0.1 (pages pre-rendered, so the server is not what
is measured), then in one run:
  A. ``haowatch crawl`` of every account: account pages, then every article through
     parse → validate → dedup → store (one transaction per article, links and snapshots included);
  B. a bare Scrapy spider fetching the same URLs with the same settings and doing nothing;
  C. ``haowatch crawl`` again: the steady state (nothing new);
  D. ``haowatch worker`` (what the service runs) on a fresh database, until every article is stored.
Prints pages/s, the A/B ratio, peak memory (max RSS) of each crawl process, and the request counts.

Usage: python benchmarks/bench_crawl.py [--accounts 100] [--per-account 30] [--concurrency 16]
Needs TEST_DATABASE_URL / DATABASE_URL (a server where it may create a database), or starts the
embedded server in a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import migrate  # noqa: E402
from db.connection import connect  # noqa: E402
from tests.helpers import maintenance_url, one  # noqa: E402
from tests.standin import StandinSite  # noqa: E402


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Whole-process wall seconds, CPU seconds (with reaped children such as parse workers), peak
    memory in MiB (the crawl process's high-water mark plus its children's), and stdout.

    Peak memory is sampled from /proc while the process runs: the kernel's ru_maxrss would count
    the memory of this benchmark process (which holds every stand-in page) at fork time.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peaks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            # /proc only: polling the process would reap it before wait4 can read its usage.
            with contextlib.suppress(OSError, ValueError):
                for pid in [proc.pid, *_children(proc.pid)]:
                    peaks[pid] = max(peaks.get(pid, 0), _hwm_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[1:3]} failed with exit code {proc.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, sum(peaks.values()) // 1024, out


def _fresh(admin: str, name: str, tids: list[str]) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db_url = make_conninfo(admin, dbname=name)
    with connect(db_url) as conn:
        migrate.upgrade(conn)
        for tid in tids:
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (tid,))
    return db_url


def run_worker_until(env: dict[str, str], db_url: str, articles: int) -> tuple[float, float, int, str]:
    """``haowatch worker`` until every article is stored, then stopped (SIGINT): wall seconds to the
    last article, CPU seconds (worker and its parse worker), peak memory in MiB, and its last line."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("haowatch")), "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    with connect(db_url) as conn:
        while one(conn, "SELECT count(*) AS n FROM articles")["n"] < articles:
            with contextlib.suppress(OSError, ValueError):
                for pid in [proc.pid, *_children(proc.pid)]:
                    peaks[pid] = max(peaks.get(pid, 0), _hwm_kib(pid))
            if proc.poll() is not None:
                raise SystemExit(f"the worker stopped early: {proc.stderr.read()[-500:] if proc.stderr else ''}")
            time.sleep(0.1)
    elapsed = time.perf_counter() - started
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, _, usage = os.wait4(proc.pid, 0)
    return elapsed, usage.ru_utime + usage.ru_stime, sum(peaks.values()) // 1024, err.strip().splitlines()[-1]


def scenario(admin: str, site: StandinSite, tids: list[str], url_file: Path, concurrency: int) -> dict[str, Any]:
    """One measured round: bare spider, full haowatch crawl, steady-state crawl, on a fresh database;
    then the continuous worker on another fresh database."""
    name = f"haowatch_bench_{os.getpid()}"
    try:
        db_url = _fresh(admin, name, tids)
        env = dict(os.environ, DATABASE_URL=db_url, HAOWATCH_SITE_URL=site.url, HAOWATCH_DOWNLOAD_DELAY="0",
                   HAOWATCH_CONCURRENCY=str(concurrency), HAOWATCH_LOG_LEVEL="WARNING",
                   HAOWATCH_ENV_FILE="/nonexistent")
        haowatch = str(Path(sys.executable).with_name("haowatch"))
        bare = run_measured([sys.executable, str(ROOT / "benchmarks/bare_spider.py"), str(url_file)], env)
        full = run_measured([haowatch, "crawl"], env)
        site.clear_log()
        steady = run_measured([haowatch, "crawl"], env)
        steady_requests = len(site.requests())
        with connect(db_url) as conn:
            stored = one(conn, "SELECT count(*) AS n FROM articles")["n"]
            links = one(conn, "SELECT count(*) AS n FROM article_links")["n"]
        env["DATABASE_URL"] = _fresh(admin, name, tids)
        worker = run_worker_until(env, env["DATABASE_URL"], stored)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return {"bare": bare, "full": full, "steady": steady, "steady_requests": steady_requests,
            "stored": stored, "links": links, "worker": worker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--per-account", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.1,
                        help="seconds the stand-in adds to each answer in the 'network' scenario")
    args = parser.parse_args()

    tids = [f"T2{n:012d}" for n in range(args.accounts)]
    body = [f"第{i}段：这是一段用于基准测试的正文内容，长度与真实文章的段落相当。" * 3 for i in range(25)]
    scenarios = [
        (f"network: latency {args.latency * 1000:.0f} ms, concurrency 4", args.latency, 4),
        (f"network: latency {args.latency * 1000:.0f} ms, concurrency 8", args.latency, 8),
        ("CPU-bound: no latency, concurrency 16", 0.0, 16),
    ]
    rows = []
    with maintenance_url() as admin:
        for label, latency, concurrency in scenarios:
            site = StandinSite(latency=latency)
            site.start()
            for a, tid in enumerate(tids):
                site.add_account(tid, f"账号{a}")
                for i in range(args.per_account):
                    docid = f"L{a:03d}{i:04d}0514R9KQ"
                    site.publish(tid, docid, f"标题{a}-{i}", [f"{docid}：{p}" for p in body])
            urls = [f"{site.url}/dy/media/{tid}.html" for tid in tids] + [
                f"{site.url}/dy/article/{docid}.html" for docid in site.articles
            ]
            url_file = Path(tempfile.mkstemp(suffix=".txt")[1])
            url_file.write_text("\n".join(urls), encoding="utf-8")
            result = scenario(admin, site, tids, url_file, concurrency)
            site.stop()
            url_file.unlink()
            rows.append((label, len(urls), result))

    print(f"{args.accounts} accounts x {args.per_account} articles; whole-process wall time, start-up included;"
          " CPU = the crawl process and its parse worker")
    print("| scenario | crawler | pages | seconds | pages/s | ratio | CPU ms/page | peak memory |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, pages, r in rows:
        bare_s, bare_cpu, bare_mib, _ = r["bare"]
        full_s, full_cpu, full_mib, _ = r["full"]
        steady_s, steady_cpu, steady_mib, _ = r["steady"]
        print(f"| {label} | bare Scrapy (fetch only) | {pages} | {bare_s:.1f} | {pages / bare_s:.0f} | |"
              f" {bare_cpu / pages * 1000:.1f} | {bare_mib} MiB |")
        print(f"| {label} | haowatch (parse + store) | {pages} | {full_s:.1f} | {pages / full_s:.0f} |"
              f" {bare_s / full_s:.2f} | {full_cpu / pages * 1000:.1f} | {full_mib} MiB |")
        print(f"| {label} | haowatch steady state | {r['steady_requests']} | {steady_s:.1f} | - | |"
              f" {steady_cpu / max(1, r['steady_requests']) * 1000:.1f} | {steady_mib} MiB |")
        worker_s, worker_cpu, worker_mib, _ = r["worker"]
        print(f"| {label} | haowatch worker (parse + store) | {pages} | {worker_s:.1f} | {pages / worker_s:.0f} |"
              f" {bare_s / worker_s:.2f} | {worker_cpu / pages * 1000:.1f} | {worker_mib} MiB |")
    for label, _, r in rows:
        print(f"{label}: stored {r['stored']} articles and {r['links']} link rows;"
              f" full: {r['full'][3].strip().splitlines()[-1]}; steady: {r['steady'][3].strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
