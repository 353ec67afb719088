"""blocks: the report's vocabulary: how a value is written in a cell or a chart label, and the block
dicts (paragraph, note, table, text cell) that ``templates/report.html`` draws.

Every string here still goes through Jinja2's autoescape when the page is rendered; ``short`` also
makes a string safe for matplotlib (no control characters, no mathtext).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

TEXT_CHARS = 600       # characters of a corpus text shown
LABEL_CHARS = 40       # characters of a label / description inside a chart

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


# --- values -------------------------------------------------------------------------------------
def clip(text: Any, n: int = TEXT_CHARS) -> str:
    """``text`` cut at ``n`` characters, saying how many more there were."""
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[:n] + f" … [{len(s) - n:,} more characters]"


def short(text: Any, n: int = LABEL_CHARS) -> str:
    """A one-line label for a chart: no control characters (invalid in SVG), at most n characters, and
    every '$' escaped so that matplotlib never reads corpus text as mathtext."""
    s = " ".join(_CONTROL.sub("\ufffd", "" if text is None else str(text)).split())
    s = s if len(s) <= n else s[:n - 1] + "…"
    return s.replace("$", r"\$")


def num(x: Any, digits: int = 3) -> str:
    """A number as a cell shows it: thousands separated, floats to ``digits``, –/∞ for missing/infinite."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–" if x is None or math.isnan(x) else ("∞" if x > 0 else "−∞")
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    return f"{float(x):.{digits}f}"


def pct(x: Any) -> str:
    """A fraction as a percentage with one decimal."""
    return "–" if x is None else f"{100 * float(x):.1f} %"


def ci(value: Any, lo: Any, hi: Any, digits: int = 2) -> str:
    """A value with its confidence interval: ``v [lo, hi]``."""
    return f"{num(value, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def as_float(x: Any) -> float:
    """``x`` as a float, NULL as NaN (for numpy arrays of query results)."""
    return float("nan") if x is None else float(x)


# --- blocks -------------------------------------------------------------------------------------
def paragraph(text: str) -> dict:
    return {"kind": "p", "text": text}


def note(text: str) -> dict:
    """A muted one-line remark (why a section or chart is missing)."""
    return {"kind": "note", "text": text}


def table(columns: Sequence[str], rows: list[list[Any]], caption: str = "", cls: str = "") -> dict:
    """A table; a cell is a value or a ``text_cell`` dict."""
    return {"kind": "table", "columns": list(columns), "rows": rows, "caption": caption, "cls": cls}


def text_cell(text: Any, head: str = "", n: int = TEXT_CHARS) -> dict:
    """A cell holding a corpus text (cut at ``n`` characters) under an optional heading (its id)."""
    return {"head": head, "text": clip(text, n), "cls": "txt"}
