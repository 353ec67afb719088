"""How a text rule turns a statistic into a score and a reason (``corrupted``, ``low_quality``).

Every rule maps its statistic through its threshold so that the threshold lands exactly on 0.5: a
flagged statistic scores below 0.5, a clean one above it, and a row's score is the minimum over its
rules. Densities are per 100 words, texts under 100 words counting as 100; corpus calibrations use
the median and the MAD scaled to a standard deviation; reasons quote a short snippet of the text.
"""

from __future__ import annotations

import numpy as np

#: the MAD of a normal distribution times this is its standard deviation
MAD_TO_SD = 1.4826


def above(x: float, t: float) -> float:
    """Sub-score of a statistic flagged when ``x > t`` (x >= 0)."""
    if t <= 0:
        return 1.0 if x <= 0 else 0.5 / (1.0 + x)
    if x <= t:
        return 1.0 - 0.5 * x / t
    return 0.5 * t / x


def above_many(x: np.ndarray, t: float) -> np.ndarray:
    """:func:`above` of every statistic in ``x`` at once (the same numbers)."""
    x = np.asarray(x, np.float64)
    if t <= 0:
        return np.where(x <= 0, 1.0, 0.5 / (1.0 + x))
    with np.errstate(divide="ignore"):
        return np.where(x <= t, 1.0 - 0.5 * x / t, 0.5 * t / x)


def below(x: float, t: float) -> float:
    """Sub-score of a statistic flagged when ``x < t`` (x >= 0)."""
    if t <= 0:
        return 1.0
    if x < t:
        return 0.5 * x / t
    return 1.0 - 0.5 * t / x if x > 0 else 0.5


def per_100_words(hits: float, n_words: int) -> float:
    """``hits`` per 100 words, a text under 100 words counting as 100 (one hit flags any short text
    while a long article needs several)."""
    return hits * 100.0 / max(100, n_words)


def median_spread(x: np.ndarray) -> tuple[float, float]:
    """``(median, robust standard deviation)`` of ``x``: the MAD scaled by :data:`MAD_TO_SD`."""
    med = float(np.median(x))
    return med, MAD_TO_SD * float(np.median(np.abs(x - med)))


def snip(s: str, n: int = 40) -> str:
    """``s`` with its whitespace collapsed, cut to ``n`` characters (an ellipsis marks the cut)."""
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"
