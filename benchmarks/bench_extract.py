"""Benchmark haowatch's parse_page against trafilatura on every article fixture page.

Run: ``.venv/bin/python benchmarks/bench_extract.py [--repeat N]``. Prints a Markdown table with the
median milliseconds per page, body precision/recall against the reviewed expected paragraphs,
platform-disclaimer leaks and links found.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.extract import ArticlePage, parse_page  # noqa: E402
from crawler.extract.common import decode_body  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "article"
LEAK_MARKS = ("特别声明", "NetEase Hao", "Notice: The content above")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _cases() -> list[dict[str, Any]]:
    cases = []
    for folder in sorted(FIXTURES.iterdir()):
        expected_file = folder / "expected.json"
        if not expected_file.exists():
            continue
        expected = json.loads(expected_file.read_text(encoding="utf-8"))
        if expected.get("kind") != "article":
            continue
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        # The author's closing 声明 line is the author's text, so it counts as body here.
        wanted = [_norm(p) for p in expected["body_paragraphs"]]
        if expected.get("author_statement"):
            wanted.append(_norm(expected["author_statement"]))
        cases.append({"name": folder.name, "raw": (folder / "page.html").read_bytes(), "meta": meta, "wanted": wanted})
    return cases


def _median_ms(funcs: dict[str, tuple[Callable[[], object], int]], rounds: int) -> dict[str, float]:
    """Median milliseconds per call of each function, timed in interleaved rounds.

    Each round runs every function its given number of times, so all of them are measured under
    the same machine load (a noisy machine otherwise skews the ratio between them); a garbage
    collection between batches keeps one tool's garbage from being collected on the other's clock.
    """
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for func, _ in funcs.values():
        func()  # warm-up
    for _ in range(rounds):
        for name, (func, calls) in funcs.items():
            gc.collect()
            for _ in range(calls):
                start = time.perf_counter()
                func()
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def _score(extracted: list[str], wanted: list[str]) -> tuple[int, int, int]:
    """(extracted paragraphs that are body paragraphs, expected paragraphs found, disclaimer leaks)."""
    wanted_set = set(wanted)
    got = [p for p in (_norm(x) for x in extracted) if p]
    got_set = set(got)
    correct = sum(p in wanted_set for p in got)
    found = sum(p in got_set for p in wanted)
    leaks = sum(any(mark in p for mark in LEAK_MARKS) for p in got)
    return correct, found, leaks


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--repeat",
        type=int,
        default=15,
        help="timed haowatch runs per page (a third as many for trafilatura, interleaved); median reported",
    )
    args = parser.parse_args()
    cases = _cases()
    trafilatura: Any = None
    try:
        trafilatura = importlib.import_module("trafilatura")
    except ImportError:
        print("trafilatura is not installed (pip install trafilatura): only haowatch is measured.\n")

    totals: dict[str, dict[str, float]] = {}
    rows = []
    for case in cases:
        raw, meta, wanted = case["raw"], case["meta"], case["wanted"]

        def ours(raw: bytes = raw, meta: dict[str, Any] = meta) -> object:
            return parse_page(raw, meta.get("url"), meta.get("content_type"))

        result = ours()
        paragraphs = (
            result.body_paragraphs
            + ([result.author_statement] if isinstance(result, ArticlePage) and result.author_statement else [])
            if isinstance(result, ArticlePage)
            else []
        )
        links = len(result.links) if isinstance(result, ArticlePage) else 0
        rounds = max(3, args.repeat // 3)
        timed: dict[str, tuple[Callable[[], object], int]] = {"haowatch": (ours, 3)}
        outputs: dict[str, tuple[list[str], int]] = {"haowatch": (paragraphs, links)}
        if trafilatura is not None:
            text = decode_body(raw, meta.get("content_type"))[0]

            def theirs(text: str = text) -> str | None:
                return trafilatura.extract(text, include_comments=False)

            output = theirs() or ""
            timed["trafilatura"] = (theirs, 1)
            outputs["trafilatura"] = (output.split("\n"), 0)
        medians = _median_ms(timed, rounds)
        measured = {tool: (medians[tool], *outputs[tool]) for tool in timed}
        for tool, (ms, extracted, found_links) in measured.items():
            correct, found, leaks = _score(extracted, wanted)
            got = len([p for p in extracted if _norm(p)])
            rows.append(
                (case["name"], tool, ms, correct / got if got else 0.0, found / len(wanted), leaks, found_links)
            )
            total = totals.setdefault(
                tool, {"ms": 0, "correct": 0, "got": 0, "found": 0, "wanted": 0, "leaks": 0, "links": 0}
            )
            total["ms"] += ms
            total["correct"] += correct
            total["got"] += got
            total["found"] += found
            total["wanted"] += len(wanted)
            total["leaks"] += leaks
            total["links"] += found_links

    print("| page | extractor | median ms/page | precision | recall | disclaimer leaks | links |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, tool, ms, precision, recall, leaks, links in rows:
        shown_links = str(links) if tool == "haowatch" else "n/a"
        print(f"| {name} | {tool} | {ms:.2f} | {precision:.3f} | {recall:.3f} | {leaks} | {shown_links} |")
    for tool, total in totals.items():
        precision = total["correct"] / total["got"] if total["got"] else 0.0
        recall = total["found"] / total["wanted"] if total["wanted"] else 0.0
        shown_links = str(int(total["links"])) if tool == "haowatch" else "n/a"
        print(
            f"| **all {len(cases)} pages** | **{tool}** | **{total['ms'] / len(cases):.2f}** (mean of medians) | "
            f"**{precision:.3f}** | **{recall:.3f}** | **{int(total['leaks'])}** | **{shown_links}** |"
        )
    if "trafilatura" in totals:
        print(
            f"\nSpeed-up: {totals['trafilatura']['ms'] / totals['haowatch']['ms']:.1f}x "
            "(sum of per-page medians, trafilatura / haowatch)"
        )


if __name__ == "__main__":
    main()
