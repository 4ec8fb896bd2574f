"""Hand-optimised fast paths of extraction give the same answers as their simple reference forms."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from crawler.extract.article.document import Page
from crawler.extract.article.truncation import _DOCUMENT_END, BodyMarks, body_mark_end, class_mark_end
from crawler.extract.common import (
    _CONTROL_BYTES,
    _DATETIME,
    _ESCAPE_BYTES,
    _PLACEHOLDER,
    BEIJING,
    _drop_control_bytes,
    _is_placeholder,
    _utf8_blank,
    absolute,
    clean_link,
    cls,
    has_token,
    parse_html,
    parse_time,
    text_of,
)
from crawler.ids import strip_tracking

SETTINGS = settings(max_examples=400, deadline=None)

# Text built from the pieces each fast path looks for, so the interesting cases come up often.
PLACEHOLDER_PIECES = [
    "empty.png",
    "blank.gif",
    "grey.gif",
    "placeholder",
    "loading.gif",
    "spacer.gif",
    "/default",
    "12x34",
    ".",
    "/",
    "a",
    "ſ",
    "K",
    "\n",
    "EMPTY.PNG",
    "x",
    "é",
    "9",
]
LINK_PIECES = ["?", "#", "&", "=", "f", "from", "spss", "clickfrom", "id", "1", "a b", "%20", "/", "é", "", "x=y"]
MARK_PIECES = [
    'class="',
    "class='",
    '"',
    "'",
    "post_body",
    "_",
    "x",
    " ",
    "post_bodyx",
    "apost_body",
    "=",
    "class=",
    "id=",
    "-",
    "é",
]


def _reference_placeholder(path: str) -> bool:
    return _PLACEHOLDER.search(path) is not None


@SETTINGS
@given(st.lists(st.sampled_from(PLACEHOLDER_PIECES), max_size=8).map("".join) | st.text(max_size=30))
def test_is_placeholder_matches_the_regex(path: str) -> None:
    assert _is_placeholder(path) == _reference_placeholder(path)


def _reference_clean_link(href: str | None, base: str | None) -> str | None:
    url = absolute(href, base)
    return strip_tracking(url) if url else None


HREFS = st.lists(st.sampled_from(LINK_PIECES), max_size=10).map(lambda parts: "https://www.163.com/a" + "".join(parts))


@SETTINGS
@given(HREFS | st.text(max_size=40), st.sampled_from([None, "https://www.163.com/dy/article/X.html"]))
def test_clean_link_matches_strip_tracking(href: str, base: str | None) -> None:
    assert clean_link(href, base) == _reference_clean_link(href, base)


MARK_DATA = st.lists(st.sampled_from(MARK_PIECES), max_size=14).map(lambda parts: "".join(parts).encode("utf-8"))


@SETTINGS
@given(MARK_DATA)
def test_class_mark_end_matches_the_regex(data: bytes) -> None:
    match = re.search(rb"class=[\"'][^\"']*\bpost_body\b", data)
    assert class_mark_end(data, b"post_body") == (match.end() if match else -1)
    marks = BodyMarks.for_class("post_body", ())
    assert body_mark_end(data, marks) == (match.end() if match else -1)


@SETTINGS
@given(st.lists(st.sampled_from(["</", "html", "body", ">", " ", "</p>", "x", "BODY", "\n"]), max_size=40))
def test_document_complete_matches_the_regex(parts: list[str]) -> None:
    from crawler.extract.article.truncation import document_complete

    data = "".join(parts).encode()
    assert document_complete(data) == (_DOCUMENT_END.search(data) is not None)


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "post_body", " ", "\t", "\n", "\r", "\x0b", "\xa0", "-"]), max_size=8))
def test_has_token_matches_xpath_cls(parts: list[str]) -> None:
    value = "".join(parts)
    div = etree.Element("div")
    if "\x0b" in value:
        return  # not an allowed attribute character
    div.set("class", value)
    assert has_token(value, "post_body") == bool(div.xpath(f"self::*[{cls('post_body')}]"))


@SETTINGS
@given(
    st.binary(max_size=60)
    | st.lists(
        st.sampled_from([b"a", b"\x00", b"\x1f", b"\t", b"\n", b"\x7f", b"\x1b", b"[", b"2J", b"]0;", b"\x07"])
    ).map(b"".join)
)
def test_drop_control_bytes_matches_translate(data: bytes) -> None:
    # Reference: whole escape sequences out, then every other control byte but tab, LF and CR.
    assert _drop_control_bytes(data) == _ESCAPE_BYTES.sub(b"", data).translate(None, _CONTROL_BYTES)


@SETTINGS
@given(st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_utf8_blank_matches_decoding(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        assert _utf8_blank(data) is None
        return
    assert _utf8_blank(data) == (not decoded or decoded.isspace())


def _reference_time(text: str) -> datetime | None:
    match = _DATETIME.search(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=BEIJING
        )
    except ValueError:
        return None


@SETTINGS
@given(
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
)
def test_parse_time_fast_path_matches_the_regex(year: int, month: int, day: int, h: int, m: int, s: int) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d} {h:02d}:{m:02d}:{s:02d}"
    assert parse_time(text) == _reference_time(text)


PIECES = ["<p>", "</p>", "<b>", "</b>", "<br>", "a", " ", "\u3000", "\xa0", "中", "<span>x</span>", "\n"]


@SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=20))
def test_text_of_matches_normalised_itertext(parts: list[str]) -> None:
    doc = parse_html(("<div id='t'>" + "".join(parts) + "</div>").encode())
    assert doc is not None
    el = doc.find(".//div")
    assert el is not None
    assert text_of(el) == " ".join("".join(el.itertext()).split())


CLASSES = ["post_body", "article-body", "x", "post_body x", " article-body ", "post_bodyx"]


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["div", "section", "h1", "p"]), st.sampled_from(CLASSES)), max_size=8))
def test_page_lookups_match_xpath(elements: list[tuple[str, str]]) -> None:
    markup = "".join(f'<{tag} class="{value}">t</{tag}>' for tag, value in elements)
    doc = parse_html(f"<html><body>{markup}</body></html>".encode())
    assert doc is not None
    page = Page(doc, markup)
    for tag, token in (("section", "article-body"), ("div", "post_body"), ("h1", "post_body")):
        expected = doc.xpath(f"//{tag}[{cls(token)}]")
        assert page.first_with_class(tag, token) is (expected[0] if expected else None)
    assert page.by_class("post_body", "div") == doc.xpath(f"//div[{cls('post_body')}]")
    assert page.by_class("post_body") == doc.xpath(f"//*[self::div or self::li or self::h1][{cls('post_body')}]")


@SETTINGS
@given(st.text(alphabet=st.characters(exclude_characters="\x1b\x9b\x9d"), max_size=40))
def test_strip_controls_without_escapes_drops_exactly_the_control_characters(text: str) -> None:
    from crawler.extract.common import has_controls, strip_controls

    expected = "".join(c for c in text if not (unicodedata.category(c) == "Cc" and c not in "\t\n\r"))
    assert strip_controls(text) == expected
    assert has_controls(text) == (expected != text)
