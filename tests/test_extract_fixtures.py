"""Every saved or synthesised page under tests/fixtures parses to its reviewed expected.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crawler.extract import parse_page, to_dict

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.parent for p in FIXTURES.glob("*/*/expected.json"))
DISCLAIMER_MARKS = ("特别声明", "NetEase Hao", "Notice: The content above", "分享至", "相关推荐", "热点推荐")


def _load(case: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = json.loads((case / "meta.json").read_text(encoding="utf-8"))
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    result = parse_page((case / "page.html").read_bytes(), meta.get("url"), meta.get("content_type"))
    return expected, to_dict(result)


def _first_difference(expected: Any, actual: Any, path: str) -> str | None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual or key not in expected:
                return f"{path}.{key}: present only in {'expected' if key in expected else 'actual'}"
            found = _first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (e, a) in enumerate(zip(expected, actual, strict=False)):
            found = _first_difference(e, a, f"{path}[{index}]")
            if found:
                return found
        if len(expected) != len(actual):
            return f"{path}: expected {len(expected)} items, got {len(actual)}"
        return None
    if expected != actual:
        return f"{path}: expected {expected!r:.300}, got {actual!r:.300}"
    return None


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_fixture_matches_expected(case: Path) -> None:
    expected, actual = _load(case)
    assert actual["kind"] == expected["kind"], f"kind: expected {expected['kind']}, got {actual} "
    for field in expected:
        difference = _first_difference(expected[field], actual.get(field), field)
        assert difference is None, f"{case.parent.name}/{case.name}: field {difference}"
    assert set(actual) == set(expected)
    json.dumps(actual, ensure_ascii=False)


ARTICLES = [c for c in CASES if json.loads((c / "expected.json").read_text(encoding="utf-8"))["kind"] == "article"]


@pytest.mark.parametrize("case", ARTICLES, ids=[c.name for c in ARTICLES])
def test_article_invariants(case: Path) -> None:
    _, actual = _load(case)
    paragraphs = actual["body_paragraphs"]
    assert paragraphs, "an article has body text"
    assert actual["body_text"] == "\n".join(paragraphs)
    assert all(p == " ".join(p.split()) and p for p in paragraphs)
    for mark in DISCLAIMER_MARKS:
        assert not any(mark in p for p in paragraphs), mark
        assert mark not in actual["body_html"], mark
    for attr in ("is_visiable", "coordinate", "data-", "onerror", "<script", "<style", "<!--"):
        assert attr not in actual["body_html"], attr
    assert all("nimg.ws.126.net" not in url for url in actual["images"])
    assert actual["published_at"] is None or actual["published_at"].endswith("+08:00")
    positions: dict[tuple[str, str | None], list[int]] = {}
    for link in actual["links"]:
        assert "?f=" not in link["url"] and "#" not in link["url"]
        positions.setdefault((link["block"], link["module"]), []).append(link["position"])
    for numbers in positions.values():
        assert numbers == list(range(1, len(numbers) + 1))
