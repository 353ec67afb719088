"""Small statistics shared across uimdata: robust z-scores, 95 % intervals of a proportion (Wilson) and of
a mean, binomial tail probabilities, the one-sided exact McNemar test and Benjamini-Hochberg q-values.

scipy and statsmodels are imported inside the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import math

import numpy as np

#: the two-sided 95 % normal quantile
Z95 = 1.959963984540054


def robust_z(s: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """(s - median) / (1.4826 MAD) over ``ref`` (default ``s``); the standard deviation stands in for
    a MAD of 0 (more than half the values equal, e.g. a corpus mostly of one repeated text), so
    that a tie does not turn every other value into an outlier."""
    ref = s if ref is None else ref
    med = np.median(ref)
    mad = 1.4826 * np.median(np.abs(ref - med))
    if mad <= 1e-12:
        mad = float(np.std(ref))
    return (s - med) / max(mad, 1e-9)


def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (statsmodels; ``n`` = 0 gives [0, 1])."""
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    k, n = np.asarray(k, float), np.asarray(n, float)
    some = n > 0
    lo, hi = np.zeros(k.shape), np.ones(k.shape)
    if some.any():
        a, b = proportion_confint(k[some], n[some], alpha=2 * norm.sf(z), method="wilson")
        lo[some], hi[some] = np.clip(a, 0, 1), np.clip(b, 0, 1)
    return lo, hi


def mean_interval(values: list[np.ndarray], z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Normal interval of a mean (continuous outcomes, e.g. a loss), one per array; NaN for an empty one."""
    lo, hi = [], []
    for v in values:
        if len(v) == 0:
            lo.append(np.nan)
            hi.append(np.nan)
            continue
        half = z * (v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else np.inf)
        lo.append(v.mean() - half)
        hi.append(v.mean() + half)
    return np.array(lo), np.array(hi)


def binom_sf_ge(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, p))


def binom_sf_le(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return float(binom.cdf(k, n, p))


def mcnemar_worse(raw_ok: np.ndarray, ok: np.ndarray) -> float:
    """One-sided exact McNemar p-value that ``ok`` is worse than ``raw_ok`` on the same rows."""
    b = int((raw_ok & ~ok).sum())   # raw right, the other wrong
    c = int((~raw_ok & ok).sum())
    return binom_sf_ge(b, b + c, 0.5) if b + c else 1.0


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order of ``p``."""
    if len(p) == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out
