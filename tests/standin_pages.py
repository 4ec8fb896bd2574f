"""Generators of NetEase Hao pages for tests and the stand-in web server.

``render_account_page`` builds an account page in the structure documented in PAGES.md (no real copy
exists), ``render_article_page`` rewrites a real saved desktop article (the 2024 sample) so that
:func:`crawler.extract.parse_page` reads back exactly the given values, and
``render_not_found_page`` builds the site's 404 page.
"""

from __future__ import annotations

import html as _html
from pathlib import Path
from typing import Any

from lxml import html as lxml_html

DEFAULT_ARTICLE_TEMPLATE = Path(__file__).parent / "fixtures" / "article" / "dy_2024_J22CN60P0514R9KQ" / "page.html"
"""The saved 2024 desktop article, usable as ``template_html`` for :func:`render_article_page`."""

_PLACEHOLDER_IMG = "https://static.ws.126.net/163/f2e/dy_media/dy_media/static/images/blank.gif"


def _e(text: str) -> str:
    return _html.escape(text, quote=True)


def _account_item(item: dict[str, Any]) -> str:
    if item.get("video_id"):
        href = f"https://www.163.com/v/video/{item['video_id']}.html"
        badge = '<span class="video_icon"></span>'
    else:
        href = f"https://www.163.com/dy/article/{item['docid']}.html"
        badge = ""
    title = _e(str(item.get("title") or ""))
    thumbnail = item.get("thumbnail")
    image = (
        f'<a class="img" href="{href}" target="_blank">'
        f'<img src="{_PLACEHOLDER_IMG}" _src="{_e(thumbnail)}" alt="{title}">{badge}</a>\n'
        if thumbnail
        else ""
    )
    no_img = "" if thumbnail else " no_img"
    return (
        f'<li class="js-item item{no_img}">\n'
        f"  {image}"
        f'  <div class="desc">\n'
        f'    <h4><a class="title" href="{href}" target="_blank">{title}</a></h4>\n'
        f'    <div class="tail"><span class="time">{_e(str(item.get("time") or ""))}</span>'
        f'<span class="comment"><a href="https://comment.tie.163.com/">0跟贴</a></span></div>\n'
        f"  </div>\n"
        f"</li>"
    )


def render_account_page(tid: str, name: str, items: list[dict[str, Any]]) -> str:
    """A full account page (``/dy/media/<tid>.html``) listing ``items``.

    Each item is a dict with ``docid`` (article) or ``video_id`` (video), ``title``, ``time``
    ("YYYY-MM-DD HH:MM") and ``thumbnail`` (URL or None; rendered as a lazy ``_src`` image).
    """
    url = f"https://www.163.com/dy/media/{tid}.html"
    rows = "\n".join(_account_item(item) for item in items)
    return f"""<!DOCTYPE html>
<html id="ne_wrap">
<head>
<meta charset="utf-8">
<title>{_e(name)} - 网易号</title>
<meta name="keywords" content="{_e(name)},网易号">
<meta name="description" content="{_e(name)}的网易号主页">
<link rel="canonical" href="{url}">
<link rel="stylesheet" href="https://static.ws.126.net/163/f2e/dy_media/dy_media/static/css/media.css">
<script>window.__MEDIA_INFO__ = {{"tid": "{tid}"}};</script>
</head>
<body>
<div class="ntes_nav_wrap" id="js_N_nav">
  <div class="ntes-nav-main clearfix">
    <a class="ntes-nav-entry-wide" href="https://www.163.com/">网易首页</a>
    <a href="https://news.163.com/">新闻</a> <a href="https://sports.163.com/">体育</a>
    <a href="https://ent.163.com/">娱乐</a> <a href="https://money.163.com/">财经</a>
    <a href="https://www.163.com/dy/article/J2UM01JA0001899O.html">导航热点</a>
  </div>
</div>
<div class="wrap clearfix">
  <div class="content_left tab_wrap js-list-tab-box">
    <div class="tab_title"><span class="tab active js-tab">文章</span><span class="tab js-tab">视频</span></div>
    <div class="tab_content js-content">
      <ul class="list_box">
{rows}
      </ul>
      <div class="list_more"><a href="javascript:;" class="js-load-more">加载更多</a></div>
    </div>
  </div>
  <div class="content_right">
    <div class="media_info">
      <img class="head_img" src="https://dingyue.ws.126.net/2021/0326/avatar.jpg" alt="{_e(name)}">
      <h2 class="media_name">{_e(name)}</h2>
      <div class="icon_line desc">简介：{_e(name)}的官方网易号</div>
      <div class="icon_line iplocation">IP属地：北京</div>
    </div>
    <div class="side_mod hot_mod">
      <h2 class="side_title">热门推荐</h2>
      <ul>
        <li><a href="https://www.163.com/dy/article/J2TI17F60514FGV8.html">侧栏热门文章</a></li>
        <li><a href="https://www.163.com/dy/media/T1512041896308.html">其他网易号</a></li>
      </ul>
    </div>
  </div>
</div>
<div class="ntes_foot"><a href="https://corp.163.com/">About NetEase</a> 网易公司版权所有</div>
<script src="https://static.ws.126.net/163/f2e/dy_media/dy_media/static/js/media.js"></script>
</body>
</html>
"""


def render_not_found_page() -> str:
    """The site's 404 page (carries the ``wrap_2018_404`` marker class)."""
    return """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>404 页面不存在 - 网易</title></head>
<body>
<div class="wrap_2018_404">
  <div class="logo"><a href="https://www.163.com/">网易</a></div>
  <div class="main_404">
    <h1>404</h1>
    <p>抱歉，您访问的页面不存在或已被删除</p>
    <p><a href="https://www.163.com/">返回网易首页</a> <span class="js-countdown">5</span>秒后自动跳转</p>
  </div>
</div>
</body>
</html>
"""


def _class_of(doc: lxml_html.HtmlElement, tag: str, token: str) -> list[lxml_html.HtmlElement]:
    return doc.xpath(f"//{tag}[contains(concat(' ', normalize-space(@class), ' '), ' {token} ')]")


def render_article_page(
    template_html: str,
    docid: str,
    title: str,
    paragraphs: list[str],
    tid: str,
    name: str,
    ptime: str,
    *,
    wemedia_id: str | None = None,
) -> str:
    """Rewrite a saved desktop article page (the 2024 sample) to carry the given article.

    ``ptime`` is "YYYY-MM-DD HH:MM:SS" (Beijing time); ``wemedia_id`` (W-id) replaces the template's
    ``data-wemediaid`` when given, else it is removed. Disclaimer, recommendations and sidebar of the
    template are kept. ``paragraphs`` should already be whitespace-normalised; a last paragraph
    starting with ``声明：`` is read back as the author statement, not as a paragraph.
    """
    doc = lxml_html.document_fromstring(template_html)
    contain = doc.get_element_by_id("contain")
    old_docid = contain.get("data-docid")
    assert old_docid is not None, "the template article names its docid"
    info = _class_of(doc, "div", "post_info")[0]
    old_tid_link = info.xpath(".//a[contains(@href, '/dy/media/T')]")[0]
    old_tid = old_tid_link.get("href").rsplit("/", 1)[-1].removesuffix(".html")

    contain.set("data-docid", docid)
    if wemedia_id:
        contain.set("data-wemediaid", wemedia_id)
    elif "data-wemediaid" in contain.attrib:
        del contain.attrib["data-wemediaid"]
    contain.set("data-ptime", ptime)
    iso = ptime.replace(" ", "T") + "+08:00"
    for meta in doc.xpath("//meta[@property='article:published_time']"):
        meta.set("content", iso)
    for meta in doc.xpath("//meta[@property='og:title']"):
        meta.set("content", title)
    for node in doc.xpath("//title"):
        node.text = f"{title}|网易订阅"
    _class_of(doc, "h1", "post_title")[0].text = title

    info.text = f"\n                  {ptime}\u3000来源: "
    old_tid_link.text = name
    card = _class_of(doc, "div", "post_wemedia")[0]
    for anchor in card.xpath(".//*[contains(@class, 'post_wemedia_name')]//a"):
        anchor.text = name
    for img in card.xpath(".//img[@alt]"):
        img.set("alt", name)

    body = _class_of(doc, "div", "post_body")[0]
    for child in list(body):
        body.remove(child)
    body.text = "\n"
    for text in paragraphs:
        paragraph = lxml_html.Element("p")
        paragraph.text = text
        paragraph.tail = "\n"
        body.append(paragraph)

    page = lxml_html.tostring(doc, encoding="unicode", doctype="<!DOCTYPE html>")
    return page.replace(old_docid, docid).replace(old_tid, tid)
