"""display: data shown on a terminal is shown literally.

Corpus text, ids, labels, column names and anything else that comes from data may hold ANSI/OSC
escape sequences (clear the screen, set the window title, OSC 8 links), other control characters,
bidirectional overrides, or Rich markup such as ``[bold red]``. :func:`printable` makes every such
character visible as an escape (``\\x1b``, ``\\n``, ``\\u202e``); :func:`literal` wraps the result in
a Rich ``Text``, which Rich never parses as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 controls, DEL, and the bidirectional / invisible formatting characters that reorder or
# hide text (LRM/RLM, ALM, LRE..RLO, LRI..PDI, zero-width space, BOM)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group(0)):04x}"


def printable(value: object, keep_newlines: bool = False) -> str:
    """``str(value)`` with every control and bidi character written as a visible escape."""
    s = "" if value is None else str(value)
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, part) for part in s.split("\n"))
    return _UNSAFE.sub(_escape, s)


def visible_controls(text: str) -> str:
    """``text`` with every character :func:`printable` escapes written as its escape, except newlines, tabs
    and carriage returns (the layout of a page: the HTML report's text keeps its line breaks)."""
    return _UNSAFE.sub(lambda m: m.group(0) if m.group(0) in _NAMED else _escape(m), text)


def printable_json(text: str) -> str:
    """JSON lines with the characters :func:`printable` escapes written as ``\\uXXXX`` (still valid
    JSON, and the same string once parsed); the newlines between records stay."""
    return "\n".join(_UNSAFE.sub(_json_escape, part) for part in text.split("\n"))


def literal(value: object, style: str = "") -> Text:
    """A Rich ``Text`` of :func:`printable` (value): never parsed as markup."""
    return Text(printable(value), style=style)
