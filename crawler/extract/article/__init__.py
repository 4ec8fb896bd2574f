"""Article pages, one module per template; the parse flow they share is in :mod:`.skeleton`.

Templates: desktop "post2020_dy" (网易号 and editorial ``/<channel>/article/``), mobile, the 2019
legacy 网易订阅 page, and the editorial news templates of 2015–2016 and 2019–2020
(``<channel>.163.com/<yy>/<mmdd>/<hh>/<DOCID>.html``).
"""

from __future__ import annotations

from crawler.extract.article.desktop import DesktopBodyOnlyTemplate, DesktopTemplate
from crawler.extract.article.document import Page
from crawler.extract.article.editorial import Editorial2015Template, EditorialTemplate
from crawler.extract.article.legacy import LegacyTemplate
from crawler.extract.article.mobile import MobileTemplate
from crawler.extract.article.skeleton import ArticleTemplate
from crawler.extract.article.truncation import body_complete, document_complete, is_truncated

__all__ = [
    "TEMPLATES",
    "ArticleTemplate",
    "Page",
    "body_complete",
    "detect_template",
    "document_complete",
    "is_truncated",
]

# Most specific first: a desktop page is known by its h1.post_title; editorial pages also carry the
# desktop template's div.post_body (around their toolbar), so a post_body alone is tried last.
TEMPLATES: tuple[ArticleTemplate, ...] = (
    DesktopTemplate(),
    MobileTemplate(),
    LegacyTemplate(),
    Editorial2015Template(),
    EditorialTemplate(),
    DesktopBodyOnlyTemplate(),
)
"""Every known template, in the order they are tried."""


def detect_template(page: Page) -> ArticleTemplate | None:
    """Which article template a document uses, or None when it is not an article page."""
    return next((template for template in TEMPLATES if template.detect(page)), None)
