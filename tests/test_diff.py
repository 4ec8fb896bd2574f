"""Paragraph diffs between revisions, CJK aware; ``haowatch diff`` on an edited stand-in article."""

from __future__ import annotations

import json

from scheduler.diff import diff_article, inline_diff, render_html, render_text
from tests.helpers import run_cli
from tests.standin import StandinSite
from tests.test_events import TID_A, docid, haowatch, paragraphs, site  # noqa: F401 - the fixture


def test_changed_characters_inside_a_chinese_paragraph_are_marked() -> None:
    segs = inline_diff("白俄罗斯与美国的合作引发热议。", "白俄罗斯与中国的合作引发热议。")
    assert [(s.op, s.text) for s in segs] == [("equal", "白俄罗斯与"), ("delete", "美"), ("insert", "中"),
                                              ("equal", "国的合作引发热议。")]
    latin = inline_diff("the quick brown fox", "the quick red fox")
    assert [(s.op, s.text) for s in latin if s.op != "equal"] == [("delete", "brown"), ("insert", "red")]


def test_paragraphs_added_removed_and_edited() -> None:
    old = "第一段不变。\n第二段将被删除，完全不同的内容。\n第三段：价格是100元。"
    new = "第一段不变。\n第三段：价格是120元。\n新增的第四段。"
    diff = diff_article("旧标题", old, "新标题", new)
    assert diff.changed and diff.stats == {"added": 1, "removed": 1, "edited": 1}
    text = render_text(diff)
    assert "title: [-旧-]{+新+}标题" in text
    assert "- 第二段将被删除" in text and "+ 新增的第四段。" in text
    assert "~ 第三段：价格是[-100-]{+120+}元。" in text
    html = render_html(diff)
    assert "<del>100</del><ins>120</ins>" in html and "<del>第二段将被删除" in html
    same = diff_article("t", "a\nb", "t", "a\nb")
    assert not same.changed and render_text(same) == "(no change)"
    assert "<script>" not in render_html(diff_article("t", "x", "t", "<script>x</script>"))


def test_haowatch_diff_shows_the_edit_of_a_stand_in_article(site: StandinSite, db_url: str) -> None:  # noqa: F811
    from db.connection import connect

    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid) VALUES (%s)", (TID_A,))
    site.publish(TID_A, docid(1), "原标题", paragraphs("甲"))
    haowatch(site, db_url, "crawl")
    out = run_cli("diff", docid(1), db_url=db_url)
    assert out.returncode == 0 and "first one stored" in out.stdout
    edited = paragraphs("甲")
    edited[1] = edited[1].replace("美国", "中国")
    site.edit(docid(1), title="新标题", paragraphs=[*edited, "补充说明：新加的一段。"])
    haowatch(site, db_url, "refetch", docid(1))
    out = run_cli("diff", f"https://www.163.com/dy/article/{docid(1)}.html", db_url=db_url)
    assert out.returncode == 0, out.stderr
    assert "revision 1 → 2: 1 paragraph(s) edited, 1 added, 0 removed" in out.stdout
    assert "[-美-]{+中+}国" in out.stdout and "+ 补充说明：新加的一段。" in out.stdout
    assert "title: [-原-]{+新+}标题" in out.stdout
    data = json.loads(run_cli("diff", docid(1), "--rev", "2", "--json", db_url=db_url).stdout)
    assert data["from_revision"] == 1 and data["stats"]["edited"] == 1
    for args, needle in ((["diff", docid(1), "--rev", "7"], "no revision 7"),
                         (["diff", docid(9)], "not a stored article"),
                         (["diff", "nonsense"], "not an article id")):
        bad = run_cli(*args, db_url=db_url)
        assert bad.returncode == 2 and needle in bad.stderr and "Traceback" not in bad.stderr
