"""Unit tests of extraction helpers, the public API details and the stand-in page generators."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from crawler.extract import (
    AccountPage,
    ArticlePage,
    NotFoundPage,
    UnexpectedPage,
    content_hash,
    parse_page,
    to_dict,
)
from crawler.extract.common import BEIJING, decode_body, original_image, parse_count, parse_time
from tests.standin_pages import (
    DEFAULT_ARTICLE_TEMPLATE,
    render_account_page,
    render_article_page,
    render_not_found_page,
)

TEMPLATE = DEFAULT_ARTICLE_TEMPLATE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("875", 875),
        ("1.2万", 12000),
        ("3,456", 3456),
        ("2亿", 200_000_000),
        ("10w+", 100000),
        ("", None),
        ("很多", None),
        ("1.5k", 1500),
    ],
)
def test_parse_count(text: str, value: int | None) -> None:
    assert parse_count(text) == value


def test_parse_time_is_beijing() -> None:
    assert parse_time("2024-05-13 09:16:04") == datetime(2024, 5, 13, 9, 16, 4, tzinfo=BEIJING)
    assert parse_time("2024-05-13T01:16:04Z") == datetime(2024, 5, 13, 9, 16, 4, tzinfo=BEIJING)
    assert parse_time("2026-01-22 19:08") == datetime(2026, 1, 22, 19, 8, tzinfo=BEIJING)
    assert parse_time("3小时前") is None
    assert parse_time("2024-13-45 99:99") is None


def test_original_image_unwraps_nimg() -> None:
    wrapped = "https://nimg.ws.126.net/?url=http%3A%2F%2Fdingyue.ws.126.net%2Fa.jpg&thumbnail=660x2147483647"
    assert original_image(wrapped) == "http://dingyue.ws.126.net/a.jpg"
    assert original_image("https://nimg.ws.126.net/?url=http://x.126.net/b.png&type=jpg") == "http://x.126.net/b.png"
    assert original_image("//static.ws.126.net/163/frontend/images/2022/empty.png") is None
    assert original_image("/img/c.jpg", "https://m.163.com/dy/article/X.html") == "https://m.163.com/img/c.jpg"


def test_decode_order() -> None:
    text = "<html><head><title>中文标题</title></head></html>"
    assert decode_body(text.encode("gbk"), "text/html; charset=GBK")[0] == text
    assert decode_body(text.encode("gbk"), None)[0] == text  # UTF-8 fails strictly, GB18030 follows
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">' + text
    assert decode_body(meta.encode("gb2312"), None)[0] == meta
    assert decode_body(meta.encode("utf-8"), None)[0] == meta  # stale meta on a UTF-8 copy
    assert decode_body(text.encode("utf-8"), "text/html; charset=nonsense-codec")[0] == text


def test_content_hash_normalises() -> None:
    base = content_hash(["第一段，内容。", "第二段!"])
    assert base == content_hash(["第一段 内容", "第二段！"])
    assert base == content_hash(["第一段，内容。第二段!"])
    assert base == content_hash(["  第一段，内容。\u200b", "第二段\u3000!"])
    assert base != content_hash(["第一段，内容。", "第三段!"])
    assert content_hash(["ＡＢＣ abc"]) == content_hash(["abcabc"])
    assert len(base) == 64 and int(base, 16) >= 0


def test_to_dict_shape() -> None:
    case = Path(__file__).parent / "fixtures" / "article" / "images_video_statement"
    meta = json.loads((case / "meta.json").read_text(encoding="utf-8"))
    result = parse_page((case / "page.html").read_bytes(), meta["url"])
    assert isinstance(result, ArticlePage)
    data = to_dict(result)
    assert data["kind"] == "article" and isinstance(data["account"], dict)
    assert data["published_at"] == "2026-01-20T09:00:01+08:00"
    assert all(isinstance(link, dict) for link in data["links"])
    json.dumps(data)
    assert to_dict(NotFoundPage(reason="x")) == {"reason": "x", "url": None, "kind": "not_found"}


def test_render_article_page_round_trip() -> None:
    paragraphs = ["第一段：测试内容。", "Second paragraph with English words.", "第三段 & <特殊> 字符"]
    page = render_article_page(
        TEMPLATE,
        "KJ0ROUND0514R9KQ",
        "往返测试标题",
        paragraphs,
        "T1600000000009",
        "测试账号",
        "2026-02-03 04:05:06",
        wemedia_id="W1111111111111111111",
    )
    result = parse_page(
        page.encode("utf-8"), "https://www.163.com/dy/article/KJ0ROUND0514R9KQ.html", "text/html; charset=utf-8"
    )
    assert isinstance(result, ArticlePage), result
    assert result.docid == "KJ0ROUND0514R9KQ"
    assert result.title == "往返测试标题"
    assert result.body_paragraphs == paragraphs
    assert result.account.tid == "T1600000000009" and result.account.name == "测试账号"
    assert result.account.wemedia_id == "W1111111111111111111"
    assert result.published_at == datetime(2026, 2, 3, 4, 5, 6, tzinfo=BEIJING)
    assert sum(link.block == "related" for link in result.links) == 40
    assert sum(link.block == "trending" for link in result.links) == 20
    assert "特别声明" in page  # the disclaimer stays in the page, never in the body


def test_render_article_page_cut_is_never_an_article() -> None:
    page = render_article_page(
        TEMPLATE, "KJ0ROUND0514R9KQ", "标题", ["正文"], "T1600000000009", "号", "2026-02-03 04:05:06"
    ).encode("utf-8")
    for fraction in (0.1, 0.25, 0.33, 0.5, 0.9):
        cut = page[: int(len(page) * fraction)]
        result = parse_page(cut, "https://www.163.com/dy/article/KJ0ROUND0514R9KQ.html")
        assert isinstance(result, UnexpectedPage), (fraction, result)


def test_render_account_page_round_trip() -> None:
    items: list[dict[str, Any]] = [
        {"docid": "KJ0ITEM10514R9KQ", "title": "文章一", "time": "2026-01-02 03:04", "thumbnail": "http://a/1.jpg"},
        {"video_id": "VJ0ITEM12", "title": "视频一", "time": "2026-01-01 00:00", "thumbnail": None},
    ]
    result = parse_page(
        render_account_page("T1600000000009", "账号名", items), "https://www.163.com/dy/media/T1600000000009.html"
    )
    assert isinstance(result, AccountPage)
    assert result.tid == "T1600000000009" and result.name == "账号名"
    assert [(i.item_type, i.id, i.title, i.thumbnail) for i in result.items] == [
        ("article", "KJ0ITEM10514R9KQ", "文章一", "http://a/1.jpg"),
        ("video", "VJ0ITEM12", "视频一", None),
    ]
    assert result.items[0].published_at == datetime(2026, 1, 2, 3, 4, tzinfo=BEIJING)


def test_render_not_found_page() -> None:
    assert isinstance(parse_page(render_not_found_page(), "https://www.163.com/dy/article/X.html"), NotFoundPage)


@pytest.mark.parametrize("body", [b"", b"   ", "", b"\x00\x00", b"<html></html>", b"<p>hello</p>", None, 42])
def test_degenerate_inputs(body: object) -> None:
    result = parse_page(body, None)  # type: ignore[arg-type]
    assert isinstance(result, UnexpectedPage)
