"""Tests of crawler/ids.py: T-id parsing and refusal, docid/video id extraction, tracking removal."""

from __future__ import annotations

import pytest

from crawler.ids import (
    DOCID_RE,
    TID_RE,
    WEMEDIA_RE,
    InvalidSourceId,
    account_url,
    article_url,
    canonical_article_url,
    docid_from_url,
    list_api_url,
    parse_tid,
    strip_tracking,
    tid_from_url,
    video_id_from_url,
)

TID = "T1536566896022"
DOCID = "J22CN60P0514R9KQ"


@pytest.mark.parametrize(
    "text",
    [
        TID,
        f"  {TID}\n",
        f"https://www.163.com/dy/media/{TID}.html",
        f"http://www.163.com/dy/media/{TID}.html",
        f"https://c.m.163.com/news/sub/{TID}.html",
        f"https://m.163.com/news/sub/{TID}.html",
        f"https://www.163.com/dy/media/{TID}.html?f=post2020_dy",
    ],
)
def test_parse_tid_accepts(text: str) -> None:
    assert parse_tid(text) == TID
    assert tid_from_url(text) == TID


@pytest.mark.parametrize(
    "text",
    [
        "",
        "T",
        "T123",
        "T15365668960221",  # 14 digits
        "T153656689602",  # 12 digits
        "t1536566896022",
        "1536566896022",
        "W8207225059024484717",
        "T1536566896022'; DROP TABLE sources; --",
        "T1536566896022 OR 1=1",
        "' OR '1'='1",
        "T1536566896O22",
        f"https://evil.example/dy/media/{TID}.html",
        f"https://www.163.com.evil.example/dy/media/{TID}.html",
        f"ftp://www.163.com/dy/media/{TID}.html",
        f"https://www.163.com/dy/article/{DOCID}.html",
        f"https://www.163.com/dy/media/{TID}1.html",
        f"https://www.163.com/dy/media/{TID}.html/../x",
        "javascript:alert(1)",
        "https://www.163.com/",
        f"http://[::1/dy/media/{TID}.html",
    ],
)
def test_parse_tid_refuses(text: str) -> None:
    with pytest.raises(InvalidSourceId):
        parse_tid(text)
    assert tid_from_url(text) is None


def test_parse_tid_error_explains() -> None:
    with pytest.raises(InvalidSourceId, match="13 digits"):
        parse_tid("T123")


@pytest.mark.parametrize(
    "url",
    [
        f"https://www.163.com/dy/article/{DOCID}.html",
        f"https://www.163.com/dy/article/{DOCID}.html?f=post2020_dy_recommends",
        f"https://www.163.com/dy/article/{DOCID}.html?clickfrom=x&spss=y#offset=0",
        f"https://m.163.com/dy/article/{DOCID}.html",
        f"https://3g.163.com/dy/article/{DOCID}.html",
        f"https://c.m.163.com/news/a/{DOCID}.html",
        f"https://c.m.163.com/news/a/{DOCID}.html?spss=newsapp&referFrom=",
        f"https://www.163.com/dy/article/{DOCID}_pdya11y.html",
        f"http://dy.163.com/v2/article/detail/{DOCID}.html",
        f"https://www.163.com/news/article/{DOCID}.html",
        f"https://www.163.com/sports/article/{DOCID}.html?f=post1603_tab_news",
        f"//www.163.com/dy/article/{DOCID}.html",
        f"  https://www.163.com/dy/article/{DOCID}.html  ",
    ],
)
def test_docid_from_url(url: str) -> None:
    assert docid_from_url(url) == DOCID


@pytest.mark.parametrize(
    "url",
    [
        "https://www.163.com/",
        f"https://www.163.com/dy/media/{TID}.html",
        "https://www.163.com/v/video/VTKMFJJQ5.html",
        "https://www.163.com/dy/article/J22CN60P0514R9K.html",  # 15 chars
        "https://www.163.com/dy/article/J22CN60P0514R9KQQ.html",
        "https://www.163.com/dy/article/Z22CN60P0514R9KQ.html",  # Z not allowed in the first 8
        "https://www.163.com/dy/article/j22cn60p0514r9kq.html",
        f"https://www.163.com/dy/article/{DOCID}.htm",
        "http://[::1",
        "",
    ],
)
def test_docid_from_url_refuses(url: str) -> None:
    assert docid_from_url(url) is None


def test_video_id() -> None:
    assert video_id_from_url("https://www.163.com/v/video/VTKMFJJQ5.html?f=x") == "VTKMFJJQ5"
    assert video_id_from_url(f"https://www.163.com/dy/article/{DOCID}.html") is None
    assert video_id_from_url("https://www.163.com/v/video/VTKMFJJQ.html") is None


def test_regexes() -> None:
    assert TID_RE.match(TID) and not TID_RE.match(TID + "0")
    assert WEMEDIA_RE.match("W8207225059024484717") and WEMEDIA_RE.match("W351337132999228435")
    assert not WEMEDIA_RE.match("W12345")
    assert DOCID_RE.match(DOCID) and not DOCID_RE.match("W8207225059024484")


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        (
            f"https://www.163.com/dy/article/{DOCID}.html?f=post2020_dy_recommends",
            f"https://www.163.com/dy/article/{DOCID}.html",
        ),
        (f"https://www.163.com/dy/article/{DOCID}.html#offset=0", f"https://www.163.com/dy/article/{DOCID}.html"),
        ("https://www.163.com/x.html?spss=a&id=5&from=b", "https://www.163.com/x.html?id=5"),
        ("//www.163.com/x.html?clickfrom=w", "https://www.163.com/x.html"),
    ],
)
def test_strip_tracking(url: str, clean: str) -> None:
    assert strip_tracking(url) == clean


def test_url_builders() -> None:
    assert canonical_article_url(DOCID) == f"https://www.163.com/dy/article/{DOCID}.html"
    assert article_url("http://127.0.0.1:8000/", DOCID) == f"http://127.0.0.1:8000/dy/article/{DOCID}.html"
    assert account_url("http://127.0.0.1:8000", TID) == f"http://127.0.0.1:8000/dy/media/{TID}.html"
    assert list_api_url("https://dy.163.com", "W1", 2) == (
        "https://dy.163.com/v2/article/list.do?pageNo=2&wemediaId=W1&size=10"
    )
