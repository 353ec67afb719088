"""outlier: out-of-distribution rows: another language, another genre, or isolated.

Every signal is calibrated on the corpus itself (robust z = (s - median) / (1.4826 MAD)), so no
threshold depends on the embedding model or the corpus size:

* ``language``: how surprising a row's characters are under a character-trigram model of the
  whole corpus (mean negative log-likelihood per trigram, weighted by sqrt(length) so that a
  three-word row of rare Latin names does not outrank a sentence in German). The same score
  averaged over the row's k-means cluster catches the groups that another language forms;
* ``isolation``: the sum of three z-scores, each weak alone: the mean cosine distance to the k
  nearest neighbours (deep kNN OOD), the Mahalanobis distance to the nearest class mean (shared
  covariance; the global mean without labels), and the same trigram model over the row's *shape*
  (letters -> a/A, digits -> 0, punctuation kept): jokes and quotations are written in full
  sentences in a corpus of definitions.

The largest of row language z, cluster language z (counted only for rows whose own language z
exceeds 1) and isolation z is calibrated once more (robust z over the corpus); a row is flagged
when that exceeds ``z_threshold`` (3.5). ``outlier_score`` = 2 (1 - Phi(z)) (lower = worse) and ``outlier_signal``
names the signal. Measured in ``make bench`` against cleanlab Datalab.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from scipy.stats import norm

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table

BUCKETS = 1 << 20
MAX_CHARS = 400
_LOWER = re.compile(r"[^\W\d_A-Z]+")
_UPPER = re.compile(r"[A-Z]+")
_DIGITS = re.compile(r"\d+")


def robust_z(s: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    ref = s if ref is None else ref
    med = np.median(ref)
    mad = 1.4826 * np.median(np.abs(ref - med))
    return (s - med) / max(mad, 1e-9)


def _trigram_hashes(texts: list[str], max_chars: int, lower: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hashed (bigram, trigram) of every character trigram of ``texts``, the text each belongs to,
    and the distinct characters."""
    clipped = [" " + (t[:max_chars].lower() if lower else t[:max_chars]) + " " for t in texts]
    lengths = np.fromiter((len(t) for t in clipped), np.int64, len(clipped))
    codes = np.frombuffer("".join(clipped).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.ones(len(codes), bool)
    ends = starts + lengths
    for off in (1, 2):  # trigrams must not cross a text boundary
        pos[np.clip(ends - off, 0, len(codes) - 1)] = False
    idx = np.flatnonzero(pos[:-2]) if len(codes) > 2 else np.zeros(0, np.int64)
    h2 = (codes[idx] * 1_000_003 + codes[idx + 1]) % BUCKETS
    h3 = (h2 * 1_000_033 + codes[idx + 2]) % BUCKETS
    owner = np.searchsorted(starts, idx, side="right") - 1
    return h2, h3, owner, np.unique(codes)


def trigram_surprise(texts: list[str], max_chars: int = MAX_CHARS, lower: bool = True,
                     chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Mean negative log-likelihood of each text's character trigrams under a smoothed trigram model
    P(c | two previous chars) estimated on all the texts (vectorised, hashed), and the trigram counts.
    Two passes over chunks of ``chunk`` texts (counts, then scores), so memory stays bounded."""
    n3 = np.zeros(BUCKETS, np.int64)
    n2 = np.zeros(BUCKETS, np.int64)
    chars = np.zeros(0, np.int64)
    for start in range(0, len(texts), chunk):
        h2, h3, _, c = _trigram_hashes(texts[start:start + chunk], max_chars, lower)
        n3 += np.bincount(h3, minlength=BUCKETS)
        n2 += np.bincount(h2, minlength=BUCKETS)
        chars = np.union1d(chars, c)
    vocab = max(len(chars), 2)
    out = np.full(len(texts), np.nan)
    count = np.zeros(len(texts), np.int64)
    for start in range(0, len(texts), chunk):
        part = texts[start:start + chunk]
        h2, h3, owner, _ = _trigram_hashes(part, max_chars, lower)
        nll = -np.log((n3[h3] + 0.1) / (n2[h2] + 0.1 * vocab))
        total = np.bincount(owner, weights=nll, minlength=len(part))
        cnt = np.bincount(owner, minlength=len(part))
        out[start:start + len(part)] = np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)
        count[start:start + len(part)] = cnt
    fill = np.nanmedian(out) if np.isfinite(out).any() else 0.0
    return np.where(np.isnan(out), fill, out), count


def length_weighted_z(texts: list[str], lower: bool = True) -> np.ndarray:
    mean_nll, count = trigram_surprise(texts, lower=lower)
    return robust_z((mean_nll - np.median(mean_nll)) * np.sqrt(np.maximum(count, 1)))


def shape(text: str) -> str:
    """Letters -> a / ^ (upper), digits -> 0, punctuation and spacing kept."""
    t = _DIGITS.sub("0", text[:MAX_CHARS])
    t = _UPPER.sub("^", t)
    return _LOWER.sub("a", t)


def mahalanobis_to_means(x: np.ndarray, y: np.ndarray | None, reg: float = 1e-3) -> np.ndarray:
    """Squared Mahalanobis distance to the nearest class mean, shared covariance (rows with y < 0
    and corpora without labels use the global mean)."""
    x = np.asarray(x, dtype=np.float32)
    if y is None or (y >= 0).sum() < 2:
        groups = np.zeros(len(x), np.int64)
    else:
        groups = np.where(y >= 0, y, -1)
    classes = np.unique(groups[groups >= 0]) if (groups >= 0).any() else np.array([0])
    means = np.stack([x[groups == c].mean(axis=0) for c in classes])
    index = np.searchsorted(classes, np.clip(groups, classes[0], None))
    means = means.astype(np.float32)
    labelled = groups >= 0 if (groups >= 0).any() else np.ones(len(x), bool)
    cov = np.zeros((x.shape[1], x.shape[1]), np.float64)
    for start in range(0, len(x), 8192):  # covariance of the residuals, a block at a time
        block = slice(start, start + 8192)
        resid = (x[block] - means[index[block]])[labelled[block]]
        cov += resid.T.astype(np.float64) @ resid
    cov = cov / max(int(labelled.sum()), 1) + reg * np.eye(x.shape[1])
    prec = np.linalg.inv(cov).astype(np.float32)
    mm = np.einsum("ij,jk,ik->i", means, prec, means)[None, :]
    out = np.empty(len(x), np.float32)
    for start in range(0, len(x), 65536):  # a block of rows at a time
        xp = x[start:start + 65536] @ prec
        d = np.einsum("ij,ij->i", xp, x[start:start + 65536])[:, None] - 2 * xp @ means.T + mm
        out[start:start + 65536] = d.min(axis=1)
    return out


@register
class OutlierDetector(Detector):
    issue: ClassVar[str] = "outlier"
    description: ClassVar[str] = ("Out-of-distribution rows: another language (character statistics of the row "
                                  "or its cluster), another genre or an isolated point (kNN distance, "
                                  "Mahalanobis distance, text shape), calibrated on the corpus itself.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"outlier_signal": pa.string()}
    requires: ClassVar[tuple[str, ...]] = ("samples", "embeddings", "neighbors")

    def __init__(self, z_threshold: float = 3.5, min_rows: int = 50) -> None:
        self.z_threshold = z_threshold
        self.min_rows = min_rows

    def skip_reason(self, ctx: Any) -> str | None:
        if ctx.n < self.min_rows:
            return f"needs at least {self.min_rows} rows to calibrate, the corpus has {ctx.n}"
        return None

    def detect(self, ctx: Any) -> DetectorResult:
        texts = ctx.texts
        g = ctx.graph
        knn = np.nan_to_num(np.nanmean(np.where(g.rows >= 0, 1.0 - g.cos, np.nan), axis=1), nan=0.0)
        y = ctx.label_codes if ctx.classes else None
        z_iso = robust_z(robust_z(knn) + robust_z(mahalanobis_to_means(ctx.embeddings, y))
                         + length_weighted_z([shape(t) for t in texts], lower=False))
        z_lang = length_weighted_z(texts)
        clusters = ctx.cluster_ids
        sizes = np.bincount(clusters)
        z_cluster = robust_z((np.bincount(clusters, weights=z_lang) / np.maximum(sizes, 1))[clusters])
        empty = np.array([not t.strip() for t in texts])  # empty texts are the corrupted detector's business
        # a cluster's evidence counts for its rows that are themselves somewhat unusual
        z_cluster = np.where(z_lang > 1.0, z_cluster, np.minimum(z_cluster, z_lang))
        stack = np.stack([z_lang, z_cluster, z_iso])
        stack[:, empty] = 0.0
        # the strongest signal, calibrated once more on the corpus (the max of three z's is not a z)
        z = robust_z(stack.max(axis=0))
        flagged = z > self.z_threshold
        which = stack.argmax(axis=0)
        names = np.array(["language", "language (cluster)", "isolation"])
        signal = np.where(flagged, names[which], None)
        why = {
            0: "unlike the corpus' text (character statistics {:.1f} robust SDs off: another language?)",
            1: "in a cluster whose text is unlike the corpus' ({:.1f} robust SDs off: another language?)",
            2: "isolated and unusually written ({:.1f} robust SDs from typical: another genre or domain?)",
        }
        reasons = [why[int(w)].format(zz) for w, zz in zip(which, z)]
        score = np.clip(2 * norm.sf(np.maximum(z, 0)), 0, 1)
        table = result_table(self.issue, ctx.ids, flagged, score, reasons,
                             {"outlier_signal": pa.array(signal.tolist(), pa.string())})
        summary = {s: int((signal == s).sum()) for s in names.tolist()} | {"z_threshold": self.z_threshold}
        return DetectorResult(self.issue, table, summary)
