"""The in-process alternative for the service benchmark: N crawls of the same spider in ONE process
(one asyncio reactor, Scrapy's CrawlerRunner), printing RSS after crawl 1, 10 and N as a table row.

Usage (from bench_service.py): DATABASE_URL=… HAOWATCH_SITE_URL=… python benchmarks/inprocess_cycles.py N
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy.utils.reactor import install_reactor  # noqa: E402

install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")

from scrapy.crawler import CrawlerRunner  # noqa: E402
from twisted.internet import defer, reactor  # noqa: E402

from crawler.settings import scrapy_settings  # noqa: E402
from crawler.spiders.hao import HaoSpider  # noqa: E402
from db import sources as sources_db  # noqa: E402
from db.connection import connect  # noqa: E402
from scheduler.config import load_settings  # noqa: E402
from scheduler.logs import setup_logging  # noqa: E402

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_KIB / 1024


def main() -> None:
    cycles = int(sys.argv[1])
    settings = load_settings()
    setup_logging("WARNING")
    database_url = settings.database_url or ""
    runner = CrawlerRunner(scrapy_settings(settings.crawl_options(), database_url))
    marks: dict[int, float] = {}

    @defer.inlineCallbacks
    def loop():  # type: ignore[no-untyped-def]
        for cycle in range(1, cycles + 1):
            with connect(database_url) as conn:
                sources = sources_db.due_sources(conn)
            yield runner.crawl(HaoSpider, mode="watch", sources=sources)
            if cycle in (1, 10, cycles):
                marks[cycle] = rss_mib()
        the_reactor.stop()

    the_reactor: Any = reactor  # twisted types the global reactor as a module
    the_reactor.callWhenRunning(loop)
    the_reactor.run()
    print(f"| in-process (one reactor, {cycles} crawls in one process) | {marks.get(1, 0):.0f} |"
          f" {marks.get(10, 0):.0f} | {marks.get(cycles, 0):.0f} |")


if __name__ == "__main__":
    main()
