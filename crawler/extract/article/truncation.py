"""Was the whole article received? Judged on raw bytes, per template.

Judged on the raw bytes (scripts and styles already cut out, so markers in them cannot mislead)
because the HTML parser silently closes whatever was left open: anything a template always prints
after the body (disclaimer, comment area, footer) proves the body was received whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_DOCUMENT_END = re.compile(rb"</(?:html|body)\s*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BodyMarks:
    """How a template's body starts in the raw bytes, and what it always prints after the body."""

    start: re.Pattern[bytes]
    """The body's opening tag attribute, e.g. ``class="… post_body …"``."""
    after: tuple[bytes, ...]
    """Markers of which at least one follows a complete body."""
    class_name: bytes | None = None
    """Set when ``start`` is exactly "a quoted class value holding this name as a word": enables the fast path."""

    @classmethod
    def for_class(cls, name: str, after: tuple[bytes, ...]) -> BodyMarks:
        """Marks for a body found by a class token."""
        raw = name.encode("ascii")
        return cls(re.compile(rb"class=[\"'][^\"']*\b" + re.escape(raw) + rb"\b"), after, raw)


def is_truncated(data: bytes, marks: BodyMarks) -> bool:
    """True when the document ends inside (or before) the article body, or before its own end."""
    return not body_complete(data, marks) or not document_complete(data)


def body_complete(data: bytes, marks: BodyMarks) -> bool:
    """True when something the template always prints after the body follows the body's start."""
    end = body_mark_end(data, marks)
    return end >= 0 and any(data.find(marker, end) >= 0 for marker in marks.after)


def body_mark_end(data: bytes, marks: BodyMarks) -> int:
    """``marks.start.search(data).end()``, or -1 when there is no match."""
    if marks.class_name is None:
        match = marks.start.search(data)
        return match.end() if match else -1
    return class_mark_end(data, marks.class_name)


def class_mark_end(data: bytes, name: bytes) -> int:
    """``re.search(rb"class=[\"'][^\"']*\\b<name>\\b", data).end()``, or -1 when there is no match.

    The regex backtracks through every class attribute of the page; looking at each occurrence of
    the class name instead finds the same match: the first quoted ``class`` value holding the name
    as a word, ending after its last such occurrence in that value.
    """
    end = -1
    value_start = -1
    pos = data.find(name)
    while pos >= 0:
        after = pos + len(name)
        quote = max(data.rfind(b'"', 0, pos), data.rfind(b"'", 0, pos))
        if end >= 0 and quote != value_start:
            break  # past the closing quote of the value that matched
        if (
            quote >= 6
            and data[quote - 6 : quote] == b"class="
            and (data[pos - 1] not in _WORD_BYTES)
            and (after >= len(data) or data[after] not in _WORD_BYTES)
        ):
            end, value_start = after, quote
        pos = data.find(name, pos + 1)
    return end


def document_complete(data: bytes) -> bool:
    """True when the document reaches its end (``</body>`` or ``</html>``).

    A page cut after the body still lacks recommendations and sidebar links, so it is retried too.
    """
    # The closing tags are nearly always among the last few "</" of the page: try those first.
    pos = len(data)
    for _ in range(16):
        pos = data.rfind(b"</", 0, pos)
        if pos < 0:
            return False
        if _DOCUMENT_END.match(data, pos):
            return True
    return _DOCUMENT_END.search(data, 0, pos) is not None
