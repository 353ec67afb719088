"""off_target: rows far from a reference set (``uim scan --reference REF``), e.g. the downstream data.

Each corpus row's distance to the reference is 1 - the cosine of its nearest reference row (FAISS).
It is calibrated on the reference itself: the same distance for every reference row to its nearest
*other* reference row gives the typical spread (median, MAD), and a corpus row is off target when
its robust z exceeds ``z_threshold``. Runs only when a reference is given.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from scipy.stats import norm

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table
from uimdata.stats import robust_z

#: the score of a row right at ``z_threshold`` is 2 (1 - Phi(3.5)), whatever the threshold: the z is
#: rescaled so that scores mean the same under another ``z_threshold``
SCORE_Z_AT_THRESHOLD = 3.5


def nearest_cosine(queries: np.ndarray, base: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    k = 2 if exclude_self else 1
    d, i = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, base.shape[0]))
    if exclude_self:
        if d.shape[1] < 2:
            return np.ones(len(queries), np.float32)
        own = i[:, 0] == np.arange(len(queries))
        return np.where(own, d[:, 1], d[:, 0])
    return d[:, 0]


@register
class OffTargetDetector(Detector):
    issue: ClassVar[str] = "off_target"
    description: ClassVar[str] = ("Rows far from the reference set given with --reference (e.g. the downstream "
                                  "data), calibrated on the spread of the reference itself.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"reference_cosine": pa.float64()}
    curate_rule: ClassVar[dict[str, Any]] = {"action": "keep"}
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {"aggressive": {"action": "drop"}}
    example_columns: ClassVar[tuple[tuple[str, str], ...]] = (("reference cosine", "reference_cosine"),)

    def __init__(self, z_threshold: float = 3.5) -> None:
        self.z_threshold = z_threshold

    def skip_reason(self, ctx: Any) -> str | None:
        if ctx.reference is None:
            return "no reference set given (uim scan --reference REF)"
        if ctx.reference.shape[1] != ctx.embeddings.shape[1]:
            return (f"reference embeddings have {ctx.reference.shape[1]} dimensions, the corpus "
                    f"{ctx.embeddings.shape[1]}")
        return None

    def detect(self, ctx: Any) -> DetectorResult:
        ref = ctx.reference
        cos = nearest_cosine(ctx.embeddings, ref)
        ref_cos = nearest_cosine(ref, ref, exclude_self=True)
        z = robust_z(1.0 - cos, ref=1.0 - ref_cos)
        flagged = z > self.z_threshold
        score = np.clip(2 * norm.sf(np.maximum(z * SCORE_Z_AT_THRESHOLD / self.z_threshold, 0)), 0, 1)
        typical = float(np.median(ref_cos))
        reasons = [f"far from the reference: nearest reference row at cosine {c:.2f} (typical {typical:.2f})"
                   for c in cos]
        table = result_table(self.issue, ctx.ids, flagged, score, reasons,
                             {"reference_cosine": pa.array(cos.astype(np.float64))})
        return DetectorResult(self.issue, table, {"reference_rows": int(len(ref)),
                                                  "typical_reference_cosine": typical})
