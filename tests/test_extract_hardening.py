"""Hostile or broken pages at extraction (issue 9): wrong charset labels, malformed own docids,
control characters and terminal escapes. Each test failed before the fix it covers."""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

import pytest

from crawler.extract import AccountPage, ArticlePage, UnexpectedPage, parse_page, to_dict
from tests.standin_pages import DEFAULT_ARTICLE_TEMPLATE, render_account_page, render_article_page

TEMPLATE = DEFAULT_ARTICLE_TEMPLATE.read_text(encoding="utf-8")
DOCID = "KJ0ROUND0514R9KQ"
URL = f"https://www.163.com/dy/article/{DOCID}.html"
TITLE = "往返测试标题：网易号文章"
PARAGRAPHS = ["第一段：测试内容，含中文标点。", "第二段 Zürich café – “引号”"]


def _page(title: str = TITLE, name: str = "测试账号", paragraphs: list[str] | None = None) -> str:
    return render_article_page(
        TEMPLATE, DOCID, title, paragraphs or PARAGRAPHS, "T1600000000009", name, "2026-02-03 04:05:06"
    )


@pytest.mark.parametrize("label", ["iso-8859-1", "ISO-8859-1", "latin1", "windows-1252", "us-ascii"])
def test_utf8_page_labelled_latin1_in_the_header_is_read_as_utf8(label: str) -> None:
    result = parse_page(_page().encode("utf-8"), URL, f"text/html; charset={label}")
    assert isinstance(result, ArticlePage), result
    assert (result.title, result.body_paragraphs, result.account.name) == (TITLE, PARAGRAPHS, "测试账号")


def test_gbk_page_labelled_latin1_is_read_as_gb18030() -> None:
    paragraphs = ["第一段：测试内容，含中文标点。", "第二段：简体中文。"]
    result = parse_page(_page(paragraphs=paragraphs).encode("gb18030"), URL, "text/html; charset=iso-8859-1")
    assert isinstance(result, ArticlePage), result
    assert (result.title, result.body_paragraphs) == (TITLE, paragraphs)


def test_utf8_page_labelled_latin1_in_meta_is_read_as_utf8() -> None:
    page = _page().replace("<head>", '<head><meta charset="iso-8859-1">', 1)
    result = parse_page(page.encode("utf-8"), URL, "text/html")
    assert isinstance(result, ArticlePage) and result.title == TITLE


def test_latin1_label_on_bytes_neither_utf8_nor_gb18030_still_decodes() -> None:
    page = _page(title="Caf\u00e9 \u00e0 Z\u00fcrich", paragraphs=["d\u00e9j\u00e0 vu \u00e9t\u00e9"])
    data = page.encode("utf-8").replace("Café à Zürich".encode(), "Café à Zürich".encode("latin-1"))
    data = data.replace("déjà vu été".encode(), "déjà vu été".encode("latin-1"))
    result = parse_page(data, URL, "text/html; charset=iso-8859-1")
    assert isinstance(result, ArticlePage), result
    assert result.title == "Café à Zürich" and result.body_paragraphs == ["déjà vu été"]


@pytest.mark.parametrize(
    "bad", ["KJ0ROUND0514R9K!", "../../etc/passwd", "KJ0ROUND0514R9KQX", "<script>", "kj0round0514r9kq"]
)
def test_desktop_page_with_a_malformed_own_docid_is_unexpected(bad: str) -> None:
    page = _page().replace(f'data-docid="{DOCID}"', f'data-docid="{bad}"')
    assert f'data-docid="{bad}"' in page
    result = parse_page(page.encode("utf-8"), URL, "text/html")
    assert isinstance(result, UnexpectedPage), result
    assert "malformed docid" in result.reason


def test_desktop_page_without_an_own_docid_still_uses_the_url() -> None:
    page = _page().replace(f'data-docid="{DOCID}"', "")
    result = parse_page(page.encode("utf-8"), URL, "text/html")
    assert isinstance(result, ArticlePage) and result.docid == DOCID


def test_mobile_page_with_a_malformed_own_docid_is_unexpected() -> None:
    page = """<html data-id="NOT-A-DOCID" data-tid="T1600000000009" data-publishtime="2026-02-03 04:05:06">
<head><title>t</title></head><body><header><h1 class="article-title">标题</h1></header>
<section class="article-body"><p>正文。</p></section><div class="article-footer"></div></body></html>"""
    result = parse_page(page.encode("utf-8"), f"https://m.163.com/dy/article/{DOCID}.html", "text/html")
    assert isinstance(result, UnexpectedPage) and "malformed docid" in result.reason


def test_editorial_page_with_a_malformed_config_docid_is_unexpected() -> None:
    from tests.test_extract_editorial import TEXT, page_2019
    from tests.test_extract_editorial import URL as EDITORIAL_URL

    page = page_2019(TEXT).replace("</body>", '<script>var config = {"docId" : "EOFOC8MJ0025810?"};</script></body>')
    result = parse_page(page, EDITORIAL_URL, "text/html")
    assert isinstance(result, UnexpectedPage) and "malformed docid" in result.reason


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _assert_clean(result: Any) -> None:
    for text in _strings(to_dict(result)):
        bad = [c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t\r"]
        assert not bad, (text[:80], bad)
        assert "[2J" not in text and "[31m" not in text and "]0;" not in text, text[:80]


ESCAPES = {
    "raw bytes": ("\x1b[2J", "\x1b[31m", "\x1b]0;pwned\x07", "\x07\x08\x7f"),
    "character references": ("&#27;[2J", "&#x1b;[31m", "&#27;]0;pwned&#7;", "&#127;&#1;"),
    "C1 characters": ("\u009b2J", "\u009b31m", "\u009d0;pwned\u009c", "\u0090\u0091"),
}


@pytest.mark.parametrize("kind", list(ESCAPES))
def test_control_characters_and_terminal_escapes_are_stripped_from_article_fields(kind: str) -> None:
    clear, red, osc, misc = ESCAPES[kind]
    page = _page(title="TITLEMARK", name="NAMEMARK", paragraphs=["第一段PARAMARK正文。", "第二段。"])
    page = page.replace("TITLEMARK", f"{clear}标题{red}一{misc}").replace("NAMEMARK", f"{osc}账号{clear}")
    page = page.replace("PARAMARK", f"{red}红{misc}")
    result = parse_page(page.encode("utf-8"), URL, "text/html")
    assert isinstance(result, ArticlePage), result
    assert result.title == "标题一"
    assert result.account.name == "账号"
    assert result.body_paragraphs == ["第一段红正文。", "第二段。"]
    assert result.body_text == "第一段红正文。\n第二段。"
    _assert_clean(result)


def test_control_characters_are_stripped_from_link_titles_and_account_pages() -> None:
    page = _page().replace("</h3>", "\x1b[2J</h3>", 3)
    result = parse_page(page.replace("&#", "&#").encode("utf-8"), URL, "text/html")
    assert isinstance(result, ArticlePage)
    _assert_clean(result)
    items = [{"docid": DOCID, "title": "TITLEMARK", "time": "2026-02-03 04:05", "thumbnail": None}]
    account = render_account_page("T1600000000009", "NAMEMARK", items)
    account = account.replace("NAMEMARK", "&#27;[2J小城故事多").replace("TITLEMARK", "\x1b]0;x\x07标题\u009b")
    listing = parse_page(account.encode("utf-8"), "https://www.163.com/dy/media/T1600000000009.html", "text/html")
    assert isinstance(listing, AccountPage), listing
    assert listing.name == "小城故事多"
    assert [item.title for item in listing.items] == ["标题"]
    _assert_clean(listing)


def test_clean_pages_are_returned_unchanged() -> None:
    page = _page()
    result = parse_page(page.encode("utf-8"), URL, "text/html")
    again = parse_page(page.encode("utf-8"), URL, "text/html")
    assert dataclasses.asdict(result) == dataclasses.asdict(again)
    assert isinstance(result, ArticlePage) and result.body_paragraphs == PARAGRAPHS
