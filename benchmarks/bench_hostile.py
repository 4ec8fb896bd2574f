"""Peak memory of a crawl whatever one response does (issue 9: under 300 MB).

In one run, against the stand-in site on 127.0.0.1 and a fresh database per scenario, one account
with a few articles is crawled by ``haowatch crawl`` while one of its pages answers with:
  baseline         ordinary pages only (the reference for the ratios);
  huge-announced   a 300 MB page with its Content-Length;
  huge-streamed    a 300 MB page without a length (read until the cap);
  gzip-bomb        a gzip body of about 0.8 MB inflating to 800 MB;
  endless-headers  headers that never end;
  account-bomb     the account page itself as the gzip bomb.
Prints, per scenario, the crawl process's peak RSS (sampled from /proc, parse workers included),
its ratio to the baseline, wall and CPU seconds, how often the hostile URL was requested, and the
crawl's summary line.

Usage: python benchmarks/bench_hostile.py [--size-mb 300] [--bomb-mb 800] [--cap 8MB]
Needs TEST_DATABASE_URL / DATABASE_URL (a server where it may create a database), or starts the
embedded server in a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
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
from tests import standin  # noqa: E402
from tests.helpers import maintenance_url, one  # noqa: E402
from tests.standin import StandinSite  # noqa: E402

TID = "T1536566896022"
ARTICLES = [f"K{n:07d}0514R9KQ" for n in range(1, 6)]
HOSTILE = ARTICLES[0]


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


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, float, str]:
    """Wall seconds, CPU seconds, peak memory in MiB of the crawl process alone and with its
    children (parse worker, resource tracker) added, sampled from /proc, and the last line of stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peaks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            with contextlib.suppress(OSError, ValueError):
                for pid in [proc.pid, *_children(proc.pid)]:
                    peaks[pid] = max(peaks.get(pid, 0), _hwm_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, _status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    lines = out.strip().splitlines()
    return (time.perf_counter() - started, usage.ru_utime + usage.ru_stime, peaks.get(proc.pid, 0) / 1024,
            sum(peaks.values()) / 1024, lines[-1] if lines else "")


def scenario(admin: str, name: str, behaviour: standin.Behaviour | None, path: str, cap: str) -> dict[str, Any]:
    site = StandinSite()
    site.start()
    site.add_account(TID, "基准账号")
    paragraphs = [f"第{i}段：这是一段用于基准测试的正文内容，长度与真实文章的段落相当。" * 3 for i in range(25)]
    for docid in ARTICLES:
        site.publish(TID, docid, f"标题{docid}", [f"{docid}：{p}" for p in paragraphs])
    if behaviour is not None:
        site.script(path, behaviour)
    dbname = f"haowatch_bench_hostile_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    db_url = make_conninfo(admin, dbname=dbname)
    try:
        with connect(db_url) as conn:
            migrate.upgrade(conn)
            conn.execute("INSERT INTO sources (tid) VALUES (%s)", (TID,))
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAOWATCH_")}
        env.update(DATABASE_URL=db_url, HAOWATCH_SITE_URL=site.url, HAOWATCH_LIST_API_URL=site.url,
                   HAOWATCH_DOWNLOAD_DELAY="0", HAOWATCH_RETRY_BACKOFF="0.05", HAOWATCH_CONCURRENCY="4",
                   HAOWATCH_LOG_LEVEL="WARNING", HAOWATCH_ENV_FILE="/nonexistent", HAOWATCH_REQUEST_TIMEOUT="60",
                   HAOWATCH_MAX_RESPONSE_SIZE=cap)
        wall, cpu, own, mib, line = run_measured([str(Path(sys.executable).with_name("haowatch")), "crawl"], env)
        with connect(db_url) as conn:
            stored = one(conn, "SELECT count(*) AS n FROM articles")["n"]
    finally:
        site.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    return {"name": name, "wall": wall, "cpu": cpu, "own": own, "mib": mib, "line": line, "stored": stored,
            "hits": len(site.requests(path))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=300, help="size of the huge pages")
    parser.add_argument("--bomb-mb", type=int, default=800, help="inflated size of the gzip bomb")
    parser.add_argument("--cap", default="8MB", help="HAOWATCH_MAX_RESPONSE_SIZE for every scenario")
    args = parser.parse_args()
    size, bomb = args.size_mb * 1024 * 1024, args.bomb_mb * 1024 * 1024
    article, account = f"/dy/article/{HOSTILE}.html", f"/dy/media/{TID}.html"
    cases = [
        ("baseline", None, article),
        ("huge-announced", standin.huge(size), article),
        ("huge-streamed", standin.huge(size, announce=False), article),
        ("gzip-bomb", standin.gzip_bomb(bomb), article),
        ("endless-headers", standin.endless_headers(), article),
        ("account-bomb", standin.gzip_bomb(bomb), account),
    ]
    standin._gzip_of_zeros(bomb)  # build the bomb before measuring (the server holds it, not the crawl)
    with maintenance_url() as admin:
        results = [scenario(admin, name, behaviour, path, args.cap) for name, behaviour, path in cases]
    base = results[0]["mib"]
    print(f"one account, {len(ARTICLES)} articles; hostile pages {args.size_mb} MB, gzip bomb inflating to"
          f" {args.bomb_mb} MB ({len(standin._gzip_of_zeros(bomb)) / 1e6:.1f} MB on the wire);"
          f" HAOWATCH_MAX_RESPONSE_SIZE={args.cap}")
    print("| scenario | peak RSS, crawl process | with children | ratio to baseline | wall s | CPU s |"
          " hostile URL fetched | articles stored | crawl summary |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['name']} | {r['own']:.0f} MiB | {r['mib']:.0f} MiB | {r['mib'] / base:.2f} | {r['wall']:.1f} |"
              f" {r['cpu']:.1f} | {r['hits']}x | {r['stored']} | {r['line']} |")
    worst = max(r["mib"] for r in results)
    print(f"worst peak {worst:.0f} MiB: {'under' if worst < 300 else 'OVER'} the 300 MB target")


if __name__ == "__main__":
    main()
