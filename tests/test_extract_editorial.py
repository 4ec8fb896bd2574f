"""Editorial news templates before 2021 (2015–2016 and 2019–2020): URL form and generalisation.

The three saved samples are fixture cases (tests/fixtures/article/news_201*); these tests vary the
documented structure (PAGES.md, "Other article templates") in ways other real pages do.
"""

from __future__ import annotations

import pytest

from crawler.extract import ArticlePage, UnexpectedPage, parse_page
from crawler.ids import docid_from_url

DOCID = "EOFOC8MJ00258105"
URL = f"https://money.163.com/19/0907/13/{DOCID}.html"


@pytest.mark.parametrize(
    "url",
    [
        URL,
        f"http://news.163.com/16/0101/00/{DOCID}.html",
        f"https://tech.163.com/20/1231/23/{DOCID}.html?f=post1603_tab_news#p=1",
        f"https://war.163.com/15/0702/23/{DOCID}.html",
    ],
)
def test_editorial_url_form_gives_the_docid(url: str) -> None:
    assert docid_from_url(url) == DOCID


@pytest.mark.parametrize(
    "url",
    [
        f"https://money.163.com/19/0907/{DOCID}.html",
        f"https://money.163.com/2019/0907/13/{DOCID}.html",
        "https://money.163.com/19/0907/13/EOFOC8MJ0025810.html",
        "https://money.163.com/19/0907/13/EOFOC8MJ0025810w.html",
        f"https://money.163.com/x/19/0907/13/{DOCID}.html",
    ],
)
def test_editorial_url_form_refuses_near_misses(url: str) -> None:
    assert docid_from_url(url) is None


def page_2019(
    body: str,
    *,
    title: str = "标题一",
    source: str = '<a id="ne_article_source" href="#">某报</a>',
    og_title: str | None = None,
    tail: str = "</body></html>",
) -> str:
    og = f'<meta property="og:title" content="{og_title}">' if og_title is not None else ""
    return f"""<html id="ne_wrap"><head><title>{title}_网易财经</title>{og}</head><body>
<div class="post_content post_area clearfix"><div class="post_content_main" id="epContentLeft">
<h1>{title}</h1>
<div class="post_time_source">2019-09-07 13:43:45　来源: {source}</div>
<div class="post_body">
 <div class="post_topshare_wrap"><div class="post_tie_top"><a class="post_cnum_tie" href="#">326</a></div>
  <div class="post_topshare"><span class="post_topshare_title">分享到：</span></div>
  <div class="post_size_ctrl"><span class="post_size_t">T</span><a href="#">+</a><a href="#">-</a></div></div>
 <div class="post_text" id="endText">{body}
  <div class="ep-source cDGray"><span class="left">本文来源：某报</span>
  <span class="ep-editor">责任编辑：张三_NF1</span></div>
 </div>
 <div class="post_btmshare"><span>分享到：</span></div>
</div>
<div class="post_comment" id="post_comment_area"></div>
</div></div>{tail}"""


def page_2015(body: str, *, title: str = "标题二") -> str:
    return f"""<!doctype html><html><head><meta charset="gb2312"><title>{title}_网易新闻</title></head><body>
<div class="ep-content" id="js-epContent"><div class="ep-content-main" id="epContentLeft">
<h1 id="h1title" class="ep-h1">{title}</h1>
<div class="clearfix"><div class="ep-time-soure cDGray">2016-03-01 08:00:00　来源: 新华网</div>
<div class="ep-tie-share"><label class="ep-share-tip">分享到：</label>
<a class="ep-cnum-tie" href="#">12</a></div></div>
<div id="endText" class="end-text">{body}
<div class="ep-source cDGray"><span class="left">本文来源：新华网</span>
<span class="ep-editor">责任编辑：李四</span></div>
</div>
<div class="sharecommend-wrap clearfix"><label class="ep-share-tip">分享到：</label></div>
</div></div></body></html>"""


TEXT = "<p>第一段正文，有一个<a href='/keywords/1/1.html'>关键词</a>链接。</p><p>第二段正文。</p>"


def _article(html: str | bytes, url: str = URL, ctype: str | None = "text/html") -> ArticlePage:
    result = parse_page(html, url, ctype)
    assert isinstance(result, ArticlePage), result
    return result


def test_2019_only_the_article_text_is_body() -> None:
    result = _article(page_2019(TEXT))
    assert result.body_paragraphs == ["第一段正文，有一个关键词链接。", "第二段正文。"]
    assert (result.template, result.docid, result.url) == ("editorial_2019", DOCID, URL)
    assert result.account.name == "某报" and result.account.tid is None
    assert result.published_at is not None and result.published_at.isoformat() == "2019-09-07T13:43:45+08:00"
    for junk in ("326", "分享到", "责任编辑", "本文来源", "+"):
        assert junk not in result.body_html and not any(junk in p for p in result.body_paragraphs)


@pytest.mark.parametrize(
    "box",
    [
        "<p><b>延伸阅读</b></p><p><a href='https://news.163.com/19/0906/10/EOC0000000018AOP.html'>另一篇文章的标题</a></p>",
        "<div><p>延伸·推荐：</p><ul><li><a href='https://a.163.com/x.html'>甲</a></li>"
        "<li><a href='https://a.163.com/y.html'>乙</a></li></ul></div>",
        "<pre datatype='specialtag' datavalue='推荐'><p><a href='https://c.m.163.com/news/a/ET2U8F130001875P.html'>"
        "推荐的标题</a></p><p>推荐文章的摘要，不是本文。</p></pre>",
        "<table><tr><td><a href='http://i.money.163.com/'><b>网易财经 会赚钱的客户端：</b></a></td></tr></table>",
        "<div class='related'><p>相关新闻：</p><p><a href='https://x.163.com/1.html'>一</a></p></div>",
    ],
)
def test_in_body_recommendation_boxes_are_not_body(box: str) -> None:
    result = _article(page_2019(TEXT.replace("<p>第二段", box + "<p>第二段")))
    assert result.body_paragraphs == ["第一段正文，有一个关键词链接。", "第二段正文。"]


def test_video_fallback_and_player_caption_are_not_body() -> None:
    video = (
        "<div class='video-wrapper'><div class='video-inner'><div class='video'>"
        "<video controls poster='http://v.163.com/p.jpg'><source src='http://flv.bn.netease.com/v.mp4'>"
        "您的浏览器暂时无法播放此视频.</video></div>"
        "<div class='video-info'><p><a href='http://v.163.com/static/3/VKS6QHNNP.html'>视频标题</a>"
        "<span>（来源：梨视频）</span></p></div></div></div>"
    )
    result = _article(page_2019(video + TEXT))
    assert result.body_paragraphs == ["第一段正文，有一个关键词链接。", "第二段正文。"]
    assert "<video" in result.body_html and "flv.bn.netease.com/v.mp4" in result.body_html
    assert "无法播放" not in result.body_html


def test_visible_headline_wins_over_a_broken_meta_title() -> None:
    broken = '多地项目连环爆雷 狂奔的龙湖集团" 暗伤"曝露？"="'
    result = _article(page_2019(TEXT, title='多地项目连环爆雷 狂奔的龙湖集团"暗伤"曝露？', og_title=broken))
    assert result.title == '多地项目连环爆雷 狂奔的龙湖集团"暗伤"曝露？'


def test_source_without_the_source_link_is_read_from_the_time_line() -> None:
    result = _article(page_2019(TEXT, source="中国新闻网"))
    assert result.account.name == "中国新闻网"


def test_2015_template_gbk_declared_in_meta() -> None:
    page = page_2015(TEXT.replace("第二段正文", "第二段正文<br>第三段正文")).encode("gb18030")
    result = _article(page, f"http://news.163.com/16/0301/08/{DOCID}.html", None)
    assert result.template == "editorial_2015"
    assert result.title == "标题二"
    assert result.body_paragraphs == ["第一段正文，有一个关键词链接。", "第二段正文", "第三段正文。"]
    assert result.account.name == "新华网"
    assert result.url == f"https://news.163.com/16/0301/08/{DOCID}.html"


def test_docid_of_the_comment_widget_config_wins_over_the_requested_url() -> None:
    html = page_2019(TEXT).replace("</body>", f'<script>var config = {{"docId" : "{DOCID}"}};</script></body>')
    result = _article(html, "https://www.163.com/dy/article/AAAAAAAA00000000.html")
    assert result.docid == DOCID


def test_editorial_page_without_any_docid_is_unexpected() -> None:
    result = parse_page(page_2019(TEXT), None, "text/html")
    assert isinstance(result, UnexpectedPage) and "docid" in result.reason


@pytest.mark.parametrize("cut", ["第二段", "本文来源", "post_btmshare"])
def test_truncated_editorial_pages_are_unexpected(cut: str) -> None:
    html = page_2019(TEXT)
    result = parse_page(html[: html.index(cut)], URL, "text/html")
    assert isinstance(result, UnexpectedPage) and "truncated" in result.reason


def test_text_found_by_its_class_when_the_id_is_missing() -> None:
    html = page_2019(TEXT).replace('class="post_text" id="endText"', 'class="post_text"')
    result = _article(html)
    assert result.template == "editorial_2019"
    assert result.body_paragraphs == ["第一段正文，有一个关键词链接。", "第二段正文。"]


@pytest.mark.parametrize(
    "paragraph",
    ["相关新闻报道称，当地已经启动调查。", "专题组成员介绍了情况。", "延伸阅读的习惯值得培养，记者说。"],
)
def test_prose_starting_with_a_box_heading_word_stays(paragraph: str) -> None:
    result = _article(page_2019(TEXT + f"<p>{paragraph}</p>"))
    assert result.body_paragraphs[-1] == paragraph
