"""Property tests: parse_page never raises and always returns one of the four result types."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.extract import AccountPage, ArticlePage, NotFoundPage, UnexpectedPage, parse_page, to_dict

FIXTURES = Path(__file__).parent / "fixtures"
PAGES = {p.parent.name: p.read_bytes() for p in sorted(FIXTURES.glob("*/*/page.html"))}
# Mangling the large real pages is slow; a compact synthetic page and the two smaller real ones suffice.
MANGLE = [
    PAGES[name] for name in ("images_video_statement", "mixed_items", "legacy_2019_EFDAIN1E054550F0", "dy_2026_seed")
]
RESULT_TYPES = (ArticlePage, AccountPage, NotFoundPage, UnexpectedPage)
URLS = st.sampled_from(
    [
        None,
        "https://www.163.com/dy/article/J22CN60P0514R9KQ.html",
        "https://www.163.com/dy/media/T1600000000002.html",
        "not a url",
        "http://[::1",
    ]
)
CTYPES = st.sampled_from(
    [None, "text/html", "text/html; charset=GBK", "text/html; charset=utf-8", "text/html; charset=bogus"]
)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAGS = [
    "<p>",
    "</p>",
    '<div class="post_body">',
    "</div>",
    '<h1 class="post_title">',
    "<html>",
    "</html>",
    "<script>",
    "</script>",
    '<ul class="list_box">',
    '<li class="js-item item">',
    '<a href="/dy/article/',
    '<div class="wrap_2018_404">',
    "<!--",
    "-->",
    '<img src="',
    '"',
    ">",
    "<",
    "&amp;",
    "&#",
    "\x00",
    "特别声明",
]


def _check(body: bytes | str, url: str | None, ctype: str | None) -> None:
    result = parse_page(body, url, ctype)
    assert isinstance(result, RESULT_TYPES)
    json.dumps(to_dict(result), ensure_ascii=False)
    if isinstance(result, ArticlePage):
        assert result.body_paragraphs or result.images or "<video" in result.body_html


@SETTINGS
@given(st.binary(max_size=4000), URLS, CTYPES)
def test_random_bytes(body: bytes, url: str | None, ctype: str | None) -> None:
    _check(body, url, ctype)


@SETTINGS
@given(st.text(max_size=2000), URLS)
def test_random_text(body: str, url: str | None) -> None:
    _check(body, url, None)


@SETTINGS
@given(st.sampled_from(MANGLE), st.floats(0, 1), URLS)
def test_truncated_pages(page: bytes, fraction: float, url: str | None) -> None:
    _check(page[: int(len(page) * fraction)], url, None)


@SETTINGS
@given(st.sampled_from(MANGLE), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 3000)), max_size=5), URLS)
def test_deleted_spans(page: bytes, cuts: list[tuple[float, int]], url: str | None) -> None:
    for where, length in cuts:
        start = int(len(page) * where)
        page = page[:start] + page[start + length :]
    _check(page, url, None)


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(TAGS), st.text(max_size=20)), max_size=200), URLS)
def test_tag_soup(parts: list[str], url: str | None) -> None:
    soup = "".join(parts)
    _check(soup, url, None)
    _check(soup.encode("utf-8", "surrogatepass"), url, "text/html")


@SETTINGS
@given(st.sampled_from(MANGLE), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(TAGS)), max_size=10))
def test_inserted_tags(page: bytes, inserts: list[tuple[float, str]]) -> None:
    for where, tag in inserts:
        at = int(len(page) * where)
        page = page[:at] + tag.encode("utf-8") + page[at:]
    _check(page, "https://www.163.com/dy/article/KJ1IMGS10514R9KQ.html", None)


def test_real_pages_truncated_anywhere_in_the_body_are_unexpected() -> None:
    for name in (
        "dy_2024_J22CN60P0514R9KQ",
        "news_2025_KC12OUHK000189FH",
        "mobile_2025_JST65UOV000181BR",
        "legacy_2019_EFDAIN1E054550F0",
        "dy_2021_G33O1QTA05372UZS",
        "news_2015_ATI9P18S00254IU1",
        "news_2019_EOFOC8MJ00258105",
        "news_2019_ET4KC46L0001875P",
    ):
        page = PAGES[name]
        start = -1
        for marker in (b'id="endText"', b"post_body", b"article-body", b'id="content"'):
            start = page.find(marker)
            if start >= 0:
                break
        for step in range(1, 10):
            cut = page[: start + (len(page) - start) * step // 40]
            result = parse_page(cut, "https://www.163.com/dy/article/J22CN60P0514R9KQ.html")
            assert isinstance(result, UnexpectedPage), (name, step)
