"""Text for a terminal: whatever a page or a database row holds is printed inert.

Account names and errors come from pages and from SQL anyone with access can write; an ``ESC[2J``
in them must show as text, never clear the user's screen.
"""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates reorder what is shown around them (a name that hides its tail).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    category = unicodedata.category(ch)
    return (category in ("Cc", "Cs", "Co", "Cn") and ch != "\t") or ch in _BIDI_CONTROLS


def escape_line(text: str) -> str:
    """``text`` with control characters (C0, C1, DEL, ESC…), bidi overrides, lone surrogates and
    unassigned code points shown as ``\\xNN`` / ``\\uNNNN``; tabs become spaces. One line out, always."""
    if text.isprintable():
        return text
    return "".join(" " if ch == "\t" else _escape_char(ch) if _unsafe(ch) else ch for ch in text)


def escape_text(text: str) -> str:
    """Like :func:`escape_line` for each line of a multi-line text (the line breaks are kept)."""
    return "\n".join(escape_line(line) for line in text.split("\n"))


def escape_json_text(text: str) -> str:
    """JSON text (already escaping C0 controls) with C1 controls and bidi overrides escaped as ``\\uNNNN``.

    They only ever occur inside JSON strings, where ``\\uNNNN`` means the same character.
    """
    return "".join(f"\\u{ord(ch):04x}" if 0x7F <= ord(ch) <= 0x9F or ch in _BIDI_CONTROLS else ch for ch in text)
