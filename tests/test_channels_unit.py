"""Pure parts of issue 11: the block classifier and the channel policy (no network, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from crawler.channels import ACCOUNT, APPLIST, LISTAPI, ChannelAnswer, SourceCheck, interpret
from crawler.extract.blocks import classify_block
from crawler.extract.types import AccountPage, ListedItem, UnexpectedPage

SAMPLES = Path(__file__).parent / "fixtures" / "article"
BJ = timezone(timedelta(hours=8))


@pytest.mark.parametrize(("status", "body", "kind"), [
    (403, b"<html>forbidden</html>", "status"),
    (418, b"", "status"),
    (451, b"x", "status"),
    (429, b"slow down", "status"),
    (200, b"", "empty"),
    (200, b"   \n", "empty"),
    (200, "<html><body><p>访问过于频繁，请稍后再试</p></body></html>".encode(), "captcha"),
    (200, "<html><head><title>安全验证</title></head><body>请输入验证码</body></html>".encode("gb18030"), "captcha"),
    (200, b"<html><script>document.cookie='acw_sc__v2=1';location.reload()</script></html>", "challenge"),
    (200, b"<html><head><script src='/c.js'></script></head><body></body></html>", "challenge"),
    (200, b"<html><body></body></html>", "empty"),
])
def test_block_answers_are_blocks(status: int, body: bytes, kind: str) -> None:
    block = classify_block(status, {"Content-Type": "text/html"}, body)
    assert block is not None and block.kind == kind, block


@pytest.mark.parametrize(("status", "body"), [
    (200, b"<html><body><h1>A normal page</h1><p>with content</p></body></html>"),
    (404, b"<html>not found</html>"),
    (503, b"busy"),
    (200, b'{"data": null}'),
])
def test_normal_answers_are_not_blocks(status: int, body: bytes) -> None:
    assert classify_block(status, {"content-type": "application/json"}, body, expect_json=True) is None or (
        status == 200 and b"<html" in body and classify_block(status, {}, body) is None)
    assert classify_block(status, {}, body) is None


def test_a_real_article_about_captchas_is_not_a_block() -> None:
    page = next(SAMPLES.glob("*2024*/page.html")).read_bytes()
    assert classify_block(200, {}, page.replace(b"<p>", "<p>验证码 访问过于频繁".encode(), 1)) is None


def _items(*specs: tuple[str, str]) -> list[ListedItem]:
    return [ListedItem("article", docid, f"https://www.163.com/dy/article/{docid}.html", docid,
                       datetime.fromisoformat(when).replace(tzinfo=BJ)) for docid, when in specs]


A, B, C, D = ("K00000010514R9KQ", "2026-01-04 10:00"), ("K00000020514R9KQ", "2026-01-03 10:00"), \
    ("K00000030514R9KQ", "2026-01-02 10:00"), ("K00000040514R9KQ", "2026-01-01 10:00")


def test_interpret_tells_blocked_from_parse_failed() -> None:
    blocked = interpret(ACCOUNT, 403, {}, b"no", None)
    assert blocked.status == "blocked"
    changed = interpret(ACCOUNT, 200, {}, b"<html><body><div>" + b"x" * 100 + b"</div></body></html>",
                        UnexpectedPage("account page without an item list"))
    assert changed.status == "parse_failed"
    empty = interpret(ACCOUNT, 200, {}, b"<html><body>" + b"y" * 100 + b"</body></html>",
                      AccountPage("T1536566896022", "n", []))
    assert empty.status == "empty"


def test_primary_works_no_fallback_asked() -> None:
    check = SourceCheck("T1536566896022", "W8207225059024484717")
    check.record(ChannelAnswer(ACCOUNT, "ok", _items(A, B)))
    assert check.next_channels() == []
    decision = check.decide()
    assert decision.status == "ok" and decision.active_channel == ACCOUNT and not decision.drift


def test_primary_blocked_falls_back_and_degrades() -> None:
    check = SourceCheck("T1536566896022", "W8207225059024484717")
    check.record(ChannelAnswer(ACCOUNT, "blocked", error="blocked: HTTP 403"))
    assert check.next_channels() == [LISTAPI, APPLIST]
    check.record(ChannelAnswer(LISTAPI, "ok", _items(A, B)))
    check.record(ChannelAnswer(APPLIST, "blocked", error="blocked: HTTP 403"))
    decision = check.decide()
    assert decision.status == "degraded" and decision.active_channel == LISTAPI
    assert [i.id for i in decision.items] == [A[0], B[0]]


def test_without_w_id_only_the_app_list_is_a_fallback() -> None:
    check = SourceCheck("T1536566896022", None, has_history=True)
    check.record(ChannelAnswer(ACCOUNT, "empty"))
    assert check.next_channels() == [APPLIST]
    check.record(ChannelAnswer(APPLIST, "blocked", error="blocked: captcha"))
    assert check.decide().status == "blocked"


def test_everything_failing_keeps_the_primary_reason() -> None:
    check = SourceCheck("T1536566896022", "W8207225059024484717")
    check.record(ChannelAnswer(ACCOUNT, "parse_failed", error="account page not understood"))
    check.next_channels()
    check.record(ChannelAnswer(LISTAPI, "empty"))
    check.record(ChannelAnswer(APPLIST, "empty"))
    decision = check.decide()
    assert decision.status == "parse_failed" and not decision.ok


def test_cross_check_counts_items_missed_inside_each_window() -> None:
    check = SourceCheck("T1536566896022", "W8207225059024484717", cross_check=True)
    check.record(ChannelAnswer(ACCOUNT, "ok", _items(A, C)))  # misses B (inside its window)
    assert check.next_channels() == [LISTAPI, APPLIST]
    check.record(ChannelAnswer(LISTAPI, "ok", _items(A, B, C, D)))
    check.record(ChannelAnswer(APPLIST, "ok", _items(A, B)))  # D is older than its window: not missed
    decision = check.decide()
    assert decision.status == "ok"
    assert decision.drift == {ACCOUNT: [B[0]]}
    assert {i.id for i in decision.items} == {A[0], B[0], C[0], D[0]}
