"""Paragraph-level diffs between two versions of an article, with changed characters marked.

Pure functions (no database, no clock). Paragraphs are matched first; a paragraph that was
rewritten is then compared token by token, where a token is one CJK character (Chinese has no
spaces, so each character is a word) or a run of letters/digits, or one other character. That
marks ``改成了`` inside a long Chinese paragraph instead of replacing the whole paragraph.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Literal

Op = Literal["equal", "insert", "delete", "replace"]

# A run of Latin letters/digits is one token; every other character (CJK, punctuation, space) is one.
_TOKEN_RE = re.compile(r"[A-Za-z0-9\u00C0-\u024F]+|.", re.DOTALL)
# Rewritten paragraphs less similar than this are shown as removed + added, not as inline edits.
_INLINE_MIN_RATIO = 0.3
# Above this many paragraph pairs in one rewritten stretch, pair them in order instead of best-first.
_ALIGN_MAX_CELLS = 2500


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a rewritten paragraph: unchanged, inserted or deleted text."""

    op: Literal["equal", "insert", "delete"]
    text: str


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph-level change. ``segments`` is set for a paragraph edited in place."""

    op: Op
    old: str = ""
    new: str = ""
    segments: tuple[Segment, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class ArticleDiff:
    """The diff of an article between two revisions."""

    old_title: str
    new_title: str
    title_segments: tuple[Segment, ...]
    blocks: tuple[Block, ...]

    @property
    def changed(self) -> bool:
        return self.old_title != self.new_title or any(b.op != "equal" for b in self.blocks)

    @property
    def stats(self) -> dict[str, int]:
        """Paragraphs added, removed and edited."""
        counts = {"added": 0, "removed": 0, "edited": 0}
        for b in self.blocks:
            if b.op == "insert":
                counts["added"] += 1
            elif b.op == "delete":
                counts["removed"] += 1
            elif b.op == "replace":
                counts["edited"] += 1
        return counts


def paragraphs(text: str | None) -> list[str]:
    """Non-empty, stripped lines of a stored ``body_text``."""
    return [line.strip() for line in (text or "").split("\n") if line.strip()]


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def inline_diff(old: str, new: str) -> tuple[Segment, ...]:
    """Token-level diff of two strings (CJK characters are tokens of their own)."""
    a, b = _tokens(old), _tokens(new)
    out: list[Segment] = []

    def add(op: Literal["equal", "insert", "delete"], text: str) -> None:
        if not text:
            return
        if out and out[-1].op == op:
            out[-1] = Segment(op, out[-1].text + text)
        else:
            out.append(Segment(op, text))

    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", "".join(a[i1:i2]))
        else:
            add("delete", "".join(a[i1:i2]))
            add("insert", "".join(b[j1:j2]))
    return tuple(out)


def _similarity(old: str, new: str) -> float:
    return SequenceMatcher(None, _tokens(old), _tokens(new), autojunk=False).ratio()


def _align(olds: list[str], news: list[str]) -> list[Block]:
    """Pair rewritten paragraphs by similarity, in order (a small dynamic programme); the rest are
    plain removals and additions."""
    n, m = len(olds), len(news)
    if n * m > _ALIGN_MAX_CELLS:
        sims = {(k, k): _similarity(olds[k], news[k]) for k in range(min(n, m))}
        pairs = {k: k for k in range(min(n, m)) if sims[(k, k)] >= _INLINE_MIN_RATIO}
    else:
        sim = [[_similarity(o, w) for w in news] for o in olds]
        score = [[0.0] * (m + 1) for _ in range(n + 1)]
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                best = max(score[i - 1][j], score[i][j - 1])
                if sim[i - 1][j - 1] >= _INLINE_MIN_RATIO:
                    best = max(best, score[i - 1][j - 1] + sim[i - 1][j - 1])
                score[i][j] = best
        pairs = {}
        i, j = n, m
        while i > 0 and j > 0:
            if sim[i - 1][j - 1] >= _INLINE_MIN_RATIO and score[i][j] == score[i - 1][j - 1] + sim[i - 1][j - 1]:
                pairs[i - 1] = j - 1
                i, j = i - 1, j - 1
            elif score[i][j] == score[i - 1][j]:
                i -= 1
            else:
                j -= 1
    out: list[Block] = []
    j = 0
    for i, o in enumerate(olds):
        if i in pairs:
            while j < pairs[i]:
                out.append(Block("insert", new=news[j]))
                j += 1
            out.append(Block("replace", old=o, new=news[j], segments=inline_diff(o, news[j])))
            j += 1
        else:
            out.append(Block("delete", old=o))
    out.extend(Block("insert", new=w) for w in news[j:])
    return out


def diff_paragraphs(old: list[str], new: list[str]) -> tuple[Block, ...]:
    """Paragraph blocks: equal, inserted, deleted, or replaced with inline segments."""
    blocks: list[Block] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            blocks.extend(Block("equal", old=p, new=p) for p in old[i1:i2])
        elif tag == "delete":
            blocks.extend(Block("delete", old=p) for p in old[i1:i2])
        elif tag == "insert":
            blocks.extend(Block("insert", new=p) for p in new[j1:j2])
        else:
            blocks.extend(_align(old[i1:i2], new[j1:j2]))
    return tuple(blocks)


def diff_article(old_title: str | None, old_text: str | None, new_title: str | None,
                 new_text: str | None) -> ArticleDiff:
    """The diff of title and body between two stored revisions."""
    ot, nt = old_title or "", new_title or ""
    return ArticleDiff(ot, nt, inline_diff(ot, nt) if ot != nt else (), diff_paragraphs(paragraphs(old_text),
                                                                                        paragraphs(new_text)))


# --- rendering -------------------------------------------------------------------------------------


def _segments_text(segments: tuple[Segment, ...]) -> str:
    marks = {"equal": "{}", "delete": "[-{}-]", "insert": "{{+{}+}}"}
    return "".join(marks[s.op].format(s.text) for s in segments)


def _shown(diff: ArticleDiff, context: int) -> Iterator[Block | None]:
    """The blocks to show: each change with ``context`` unchanged blocks around it; None marks a gap."""
    changed = [i for i, b in enumerate(diff.blocks) if b.op != "equal"]
    keep = {j for i in changed for j in range(i - context, i + context + 1)}
    skipped = False
    shown = diff.old_title != diff.new_title  # the title line comes first when it changed
    for i, b in enumerate(diff.blocks):
        if i not in keep:
            skipped = True
            continue
        if skipped and shown:
            yield None
        skipped, shown = False, True
        yield b


def render_text(diff: ArticleDiff, context: int = 1) -> str:
    """Plain text: ``-``/``+`` lines for removed/added paragraphs, ``~`` for edited ones with
    ``[-removed-]{+added+}`` marks inside; ``context`` unchanged paragraphs around each change."""
    lines: list[str] = []
    if diff.old_title != diff.new_title:
        lines.append(f"title: {_segments_text(diff.title_segments)}")
    for b in _shown(diff, context):
        if b is None:
            lines.append("  …")
        elif b.op == "equal":
            lines.append(f"  {b.old}")
        elif b.op == "delete":
            lines.append(f"- {b.old}")
        elif b.op == "insert":
            lines.append(f"+ {b.new}")
        else:
            lines.append(f"~ {_segments_text(b.segments)}")
    if not lines:
        lines.append("(no change)")
    return "\n".join(lines)


def _segments_html(segments: tuple[Segment, ...]) -> str:
    out = []
    for s in segments:
        text = html.escape(s.text)
        out.append(text if s.op == "equal" else f"<{'del' if s.op == 'delete' else 'ins'}>{text}</"
                   f"{'del' if s.op == 'delete' else 'ins'}>")
    return "".join(out)


def render_html(diff: ArticleDiff, context: int = 1) -> str:
    """HTML: removed paragraphs in ``<del>``, added ones in ``<ins>``, edits marked inline."""
    parts: list[str] = []
    if diff.old_title != diff.new_title:
        parts.append(f'<p class="diff-title">标题 title: {_segments_html(diff.title_segments)}</p>')
    for b in _shown(diff, context):
        if b is None:
            parts.append('<p class="diff-gap">…</p>')
        elif b.op == "equal":
            parts.append(f'<p class="diff-same">{html.escape(b.old)}</p>')
        elif b.op == "delete":
            parts.append(f'<p class="diff-del"><del>{html.escape(b.old)}</del></p>')
        elif b.op == "insert":
            parts.append(f'<p class="diff-ins"><ins>{html.escape(b.new)}</ins></p>')
        else:
            parts.append(f'<p class="diff-edit">{_segments_html(b.segments)}</p>')
    if not parts:
        parts.append("<p>(no change)</p>")
    return "\n".join(parts)
