"""Parsing in worker processes gives exactly what inline parsing gives, and survives a dead worker."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from crawler.extract import parse_page, to_dict
from crawler.parsing import PageParser

PAGE = Path(__file__).parent / "fixtures" / "article" / "dy_2024_J22CN60P0514R9KQ" / "page.html"
URL = "https://www.163.com/dy/article/J22CN60P0514R9KQ.html"


def test_worker_result_equals_inline_result() -> None:
    body = PAGE.read_bytes()
    parser = PageParser(1)
    try:
        result = asyncio.run(parser.parse(body, URL, "text/html; charset=utf-8"))
    finally:
        parser.close()
    assert to_dict(result) == to_dict(parse_page(body, URL, "text/html; charset=utf-8"))


def test_a_killed_worker_falls_back_to_inline_parsing() -> None:
    body = PAGE.read_bytes()
    parser = PageParser(1)

    async def scenario() -> str:
        await parser.parse(body, URL, None)
        assert parser._pool is not None
        for pid in list(parser._pool._processes):  # the worker dies, as under the OOM killer
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        result = await parser.parse(body, URL, None)
        return result.kind

    try:
        assert asyncio.run(scenario()) == "article"
        assert parser.workers == 0
    finally:
        parser.close()
