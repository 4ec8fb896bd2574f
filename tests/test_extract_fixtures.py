"""Every saved or synthesised page under tests/fixtures parses to its reviewed expected.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crawler.channels import parse_as
from crawler.extract import to_dict

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.parent for p in FIXTURES.glob("*/*/expected.json"))
DISCLAIMER_MARKS = ("特别声明", "NetEase Hao", "Notice: The content above", "分享至", "相关推荐", "热点推荐")


def _load(case: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = json.loads((case / "meta.json").read_text(encoding="utf-8"))
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    # The case's folder names its page type: list channels (applist, listapi) have JSON parsers.
    result = parse_as(case.parent.name, (case / "page.html").read_bytes(), meta.get("url"), meta.get("content_type"),
                      meta.get("tid"))
    return expected, to_dict(result)


def differences(expected: Any, actual: Any, path: str) -> list[str]:
    """Every place where ``actual`` differs from ``expected``, as "path: what differs" lines."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual or key not in expected:
                found.append(f"{path}.{key}: present only in {'expected' if key in expected else 'actual'}")
            else:
                found.extend(differences(expected[key], actual[key], f"{path}.{key}"))
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=False)):
            found.extend(differences(e, a, f"{path}[{index}]"))
        if len(expected) != len(actual):
            found.append(f"{path}: expected {len(expected)} items, got {len(actual)}")
        return found
    if expected != actual:
        return [f"{path}: expected {expected!r:.300}, got {actual!r:.300}"]
    return []


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_fixture_matches_expected(case: Path) -> None:
    expected, actual = _load(case)
    found = differences(expected, actual, "")
    assert not found, f"{case.parent.name}/{case.name}: {len(found)} differing field(s):\n" + "\n".join(found)
    json.dumps(actual, ensure_ascii=False)


def test_every_differing_field_is_reported() -> None:
    expected = {"kind": "article", "title": "a", "account": {"name": "x", "tid": None}, "links": [1, 2]}
    actual = {"kind": "article", "title": "b", "account": {"name": "y", "tid": None}, "links": [1, 3, 4], "extra": 1}
    assert differences(expected, actual, "") == [
        ".account.name: expected 'x', got 'y'",
        ".extra: present only in actual",
        ".links[1]: expected 2, got 3",
        ".links: expected 2 items, got 3",
        ".title: expected 'a', got 'b'",
    ]


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
