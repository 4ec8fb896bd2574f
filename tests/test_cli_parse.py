"""``haowatch parse``: what haowatch would store from any saved page, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.parent for p in FIXTURES.glob("*/*/expected.json"))
ARTICLE_KEYS = {"kind", "docid", "url", "title", "published_at", "ip_location", "account", "body_paragraphs",
                "body_text", "body_html", "images", "author_statement", "links"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_parse_prints_the_expected_json(case: Path) -> None:
    meta = json.loads((case / "meta.json").read_text(encoding="utf-8"))
    args = ["parse", str(case / "page.html")]
    if meta.get("url"):
        args += ["--url", meta["url"]]
    if meta.get("content_type"):
        args += ["--content-type", meta["content_type"]]
    if case.parent.name in ("listapi", "applist"):  # JSON list channels
        args += ["--type", case.parent.name, "--tid", meta["tid"]]
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed == json.loads((case / "expected.json").read_text(encoding="utf-8"))
    if printed["kind"] == "article":
        assert set(printed) >= ARTICLE_KEYS


def test_parse_reads_stdin() -> None:
    case = FIXTURES / "article" / "dy_2024_J22CN60P0514R9KQ"
    out = run_cli("parse", "-", stdin=(case / "page.html").read_bytes())
    assert out.returncode == 0
    assert json.loads(out.stdout)["docid"] == "J22CN60P0514R9KQ"


def test_parse_of_a_404_page_says_not_found() -> None:
    out = run_cli("parse", str(FIXTURES / "other" / "not_found_404" / "page.html"))
    assert out.returncode == 0 and json.loads(out.stdout)["kind"] == "not_found"


def test_parse_of_a_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    out = run_cli("parse", str(tmp_path / "nope.html"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_parse_of_binary_junk_is_unexpected_not_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.html"
    junk.write_bytes(bytes(range(256)) * 10)
    out = run_cli("parse", str(junk))
    assert out.returncode == 0 and json.loads(out.stdout)["kind"] == "unexpected"
