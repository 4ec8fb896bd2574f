"""A bare Scrapy spider for the benchmarks: fetches the given URLs with haowatch's Scrapy settings
(same concurrency, retries, headers) and does nothing with them, or with ``--parse`` parses each
page with haowatch's extraction (and stores nothing). Prints the request count and seconds as JSON.

Usage: python benchmarks/bare_spider.py URL_FILE [--parse]"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess

from crawler.extract import parse_page
from crawler.settings import scrapy_settings
from scheduler.config import load_settings


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, urls: list[str], parse_pages: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls
        self.parse_pages = parse_pages

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, dont_filter=True)

    def parse(self, response: scrapy.http.Response) -> None:
        if self.parse_pages:
            parse_page(response.body, response.url, None)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        urls = [line.strip() for line in handle if line.strip()]
    settings = scrapy_settings(load_settings().crawl_options(), "unused")
    settings["ITEM_PIPELINES"] = {}
    settings["LOG_LEVEL"] = "WARNING"
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, urls=urls, parse_pages="--parse" in sys.argv[2:])
    started = time.perf_counter()
    process.start()
    elapsed = time.perf_counter() - started
    stats = crawler.stats.get_stats() if crawler.stats else {}
    print(json.dumps({"requests": stats.get("downloader/request_count", 0), "seconds": elapsed}))


if __name__ == "__main__":
    main()
