"""outlier: out-of-distribution rows: isolated in embedding space, or written unlike the corpus.

Two signals, each calibrated robustly over the corpus itself (z = (s - median) / (1.4826 MAD)):

* ``knn``: the mean cosine distance to the row's k nearest neighbours in the FAISS graph (deep
  kNN OOD). It finds isolated rows, but a few hundred rows of another language or domain are
  close to each other and hide from it;
* ``style``: how surprising the row's characters are under a character-trigram model of the
  whole corpus (mean negative log-likelihood per trigram). Other languages and other genres
  (jokes, quotations, code) stand out here even when they cluster together.

A row is flagged when either z exceeds ``z_threshold`` (``knn_z`` / ``style_z`` on their own).
``outlier_score`` = 2 * (1 - Phi(z_max)) clipped to [0, 1] (lower = worse);
``outlier_signal`` names the signal that fired.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from scipy.stats import norm

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table

BUCKETS = 1 << 20
MAX_CHARS = 400


def robust_z(s: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    ref = s if ref is None else ref
    med = np.median(ref)
    mad = 1.4826 * np.median(np.abs(ref - med))
    return (s - med) / max(mad, 1e-9)


def trigram_surprise(texts: list[str], max_chars: int = MAX_CHARS) -> np.ndarray:
    """Mean negative log-likelihood of each text's character trigrams under an add-one smoothed
    trigram model P(c | two previous chars) estimated on all the texts (vectorised, hashed)."""
    clipped = [" " + t[:max_chars].lower() + " " for t in texts]
    lengths = np.fromiter((len(t) for t in clipped), np.int64, len(clipped))
    codes = np.frombuffer("".join(clipped).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # trigram positions that do not cross a text boundary
    pos = np.ones(len(codes), bool)
    ends = starts + lengths
    for off in (1, 2):
        pos[np.clip(ends - off, 0, len(codes) - 1)] = False
    idx = np.flatnonzero(pos[:-2]) if len(codes) > 2 else np.zeros(0, np.int64)
    c0, c1, c2 = codes[idx], codes[idx + 1], codes[idx + 2]
    h2 = (c0 * 1_000_003 + c1) % BUCKETS
    h3 = (h2 * 1_000_033 + c2) % BUCKETS
    n3 = np.bincount(h3, minlength=BUCKETS)
    n2 = np.bincount(h2, minlength=BUCKETS)
    vocab = max(len(np.unique(codes)), 2)
    nll = -np.log((n3[h3] + 0.1) / (n2[h2] + 0.1 * vocab))
    owner = np.searchsorted(starts, idx, side="right") - 1
    total = np.bincount(owner, weights=nll, minlength=len(texts))
    count = np.bincount(owner, minlength=len(texts))
    out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return np.where(np.isnan(out), np.nanmedian(out) if np.isfinite(out).any() else 0.0, out)


@register
class OutlierDetector(Detector):
    issue: ClassVar[str] = "outlier"
    description: ClassVar[str] = ("Out-of-distribution rows: far from their nearest neighbours in embedding "
                                  "space, or written unlike the rest of the corpus (another language or "
                                  "genre), each signal calibrated on the corpus itself.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"outlier_signal": pa.string()}
    requires: ClassVar[tuple[str, ...]] = ("samples", "neighbors")

    def __init__(self, z_threshold: float = 3.5, knn_z: float | None = None, style_z: float | None = None,
                 min_rows: int = 20) -> None:
        self.knn_z = knn_z if knn_z is not None else z_threshold
        self.style_z = style_z if style_z is not None else z_threshold
        self.min_rows = min_rows

    def skip_reason(self, ctx: Any) -> str | None:
        if ctx.n < self.min_rows:
            return f"needs at least {self.min_rows} rows to calibrate, the corpus has {ctx.n}"
        return None

    def detect(self, ctx: Any) -> DetectorResult:
        g = ctx.graph
        valid = g.rows >= 0
        dist = np.where(valid, 1.0 - g.cos, np.nan)
        knn = np.nan_to_num(np.nanmean(dist, axis=1), nan=0.0) if g.rows.shape[1] else np.zeros(ctx.n)
        z_knn = robust_z(knn)
        z_style = robust_z(trigram_surprise(ctx.texts))
        # empty texts are the corrupted detector's business
        empty = np.array([not t.strip() for t in ctx.texts])
        z_style[empty] = 0.0
        by_knn = z_knn > self.knn_z
        by_style = z_style > self.style_z
        flagged = by_knn | by_style
        z = np.maximum(z_knn / self.knn_z, z_style / self.style_z) * 3.5  # on one scale
        score = np.clip(2 * norm.sf(np.maximum(z, 0)), 0, 1)
        signal = np.where(by_knn & by_style, "knn+style", np.where(by_knn, "knn", np.where(by_style, "style", None)))
        reasons = []
        for i in range(ctx.n):
            parts = []
            if by_knn[i]:
                parts.append(f"isolated: mean distance to its neighbours is {z_knn[i]:.1f} robust SDs above typical")
            if by_style[i]:
                parts.append(f"unusual text for this corpus (character statistics {z_style[i]:.1f} robust SDs off, "
                             "e.g. another language or genre)")
            reasons.append("; ".join(parts))
        extras = {"outlier_signal": pa.array(signal.tolist(), pa.string())}
        table = result_table(self.issue, ctx.ids, flagged, score, reasons, extras)
        summary = {"by_knn": int(by_knn.sum()), "by_style": int(by_style.sum()),
                   "knn_z_threshold": self.knn_z, "style_z_threshold": self.style_z}
        return DetectorResult(self.issue, table, summary)
