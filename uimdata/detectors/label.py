"""label: noisy labels, by confident learning (cleanlab) on out-of-fold probabilities.

The probabilities come from :mod:`uimdata.label_model` (by default one softmax regression over the
text's words and its embedding, mixed with a kNN vote over the FAISS graph; cross-validated), so no
user model is needed.

On corpora whose classes overlap a lot, cleanlab's ``find_label_issues`` flags every hard example
(precision and recall on the 50k WordNet benchmark: docs/benchmarks.md). uimdata keeps confident
learning's per-class thresholds (``cleanlab.count.get_confident_thresholds``: t_c = the mean
probability rows labelled c get for c) but asks for strong evidence: a row is a label issue when its
given label's probability is below ``relative_threshold`` (0.025; 0.2 / K with K < 8 classes) x t_c,
another class is predicted, and that class is at least K times as probable as the given label with K
classes, or 1 / ``max_ratio`` (100) times when that is less (a likelihood ratio). Both bars relax with
few classes, where every model's smoothing keeps a wrong label's probability high. The numbers were
chosen on four labelled corpora with planted noise and the demo corpus, whose labels carry none
(docs/benchmarks.md): they flag 0.99 % of the demo's labelled rows.
Rows of classes with fewer than ``min_class_rows`` (20) labelled rows are not judged: out-of-fold
probabilities mean little there, and those rows are the long tail's business. Rows the ``corrupted``
detector flags are left to it (``defer_to``).
cleanlab's own candidate count is kept in the summary.

Per row: ``label_score`` = the given label's probability (cleanlab's self-confidence, lower =
worse), ``suggested_label`` and ``suggested_label_prob``. The confident joint (given x suggested
counts, off-diagonal cells) becomes the table ``label_noise_matrix``. The summary reports no noise
rate (``estimated_noise_rate`` is null): the confident joint's off-diagonal share of a weak model
is mostly the model's own confusion (42 % on the clean demo corpus), so it is kept as
``confident_joint_offdiag_share`` and never shown as a noise rate.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table

#: with K classes the per-class bar is at least this / K (x t_c)
FEW_CLASSES_BAR = 0.2


@register
class LabelDetector(Detector):
    issue: ClassVar[str] = "label"
    description: ClassVar[str] = ("Rows whose given label disagrees with what the rest of the corpus says: "
                                  "confident learning (cleanlab) on out-of-fold probabilities from the "
                                  "embeddings, kept only where the evidence is strong.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"suggested_label": pa.string(),
                                                       "suggested_label_prob": pa.float64()}
    curate_actions: ClassVar[tuple[str, ...]] = ("drop", "relabel", "keep", "reweight")
    curate_rule: ClassVar[dict[str, Any]] = {"action": "relabel", "min_prob": 0.7, "otherwise": "drop"}
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {
        "conservative": {"action": "relabel", "min_prob": 0.9, "otherwise": "keep"},
        "aggressive": {"action": "drop"},
    }
    suggestion_columns: ClassVar[tuple[str, str] | None] = ("suggested_label", "suggested_label_prob")
    tail_guard: ClassVar[tuple[str, ...]] = ("knn", "prior")
    #: a corrupted row's label is not the issue (a stub "lib" is no 'perl' package): rows ``corrupted``
    #: flagged are left to it (score kept, no flag; the summary's ``left_to`` counts them)
    defer_to: ClassVar[tuple[str, ...]] = ("corrupted",)
    example_suggestion: ClassVar[bool] = True

    @classmethod
    def summary_line(cls, summary: dict[str, Any]) -> str | None:
        """The estimated noise rate with its interval, or (no estimate) the share of labelled rows flagged."""
        rate = summary.get("estimated_noise_rate")
        if rate is not None and summary.get("noise_rate_interval"):
            lo, hi = summary["noise_rate_interval"]
            return (f"label: estimated noise rate {rate:.1%} (95 % interval {lo:.1%}-{hi:.1%}; "
                    f"{summary.get('label_model')} out-of-fold probabilities)")
        flagged = (f"{summary['flagged_rate']:.1%} of labelled rows flagged; "
                   if summary.get("flagged_rate") is not None else "")
        return (f"label: {flagged}noise rate not estimated "
                f"(the confident joint of a weak model is not a noise rate)")

    def __init__(self, max_ratio: float | None = 0.01, relative_threshold: float | None = 0.025,
                 min_class_rows: int = 20, filter_by: str = "prune_by_noise_rate") -> None:
        self.max_ratio = max_ratio
        self.relative_threshold = relative_threshold
        self.min_class_rows = min_class_rows
        self.filter_by = filter_by

    def skip_reason(self, ctx: Any) -> str | None:
        if "label" not in ctx.samples.column_names:
            return "the corpus has no label column (name one with --label-col)"
        if len(ctx.classes) < 2:
            return f"needs at least 2 classes, the corpus has {len(ctx.classes)}"
        return None

    def detect(self, ctx: Any) -> DetectorResult:
        from cleanlab.count import compute_confident_joint, get_confident_thresholds
        from cleanlab.filter import find_label_issues

        y, classes, probs = ctx.label_codes, ctx.classes, ctx.pred_probs
        n = ctx.n
        lab = np.flatnonzero(y >= 0)
        flagged = np.zeros(n, bool)
        score = np.ones(n)
        given_p = probs[lab, y[lab]]
        score[lab] = given_p
        sugg = probs.argmax(axis=1)
        sugg_p = probs.max(axis=1)
        counts = np.bincount(y[lab], minlength=len(classes))
        present = np.flatnonzero(counts > 0)
        remap = np.full(len(classes), -1)
        remap[present] = np.arange(len(present))
        sub_probs = probs[np.ix_(lab, present)]
        sub_probs = sub_probs / sub_probs.sum(axis=1, keepdims=True)
        sub_y = remap[y[lab]]
        cl_issue = find_label_issues(sub_y, sub_probs, filter_by=self.filter_by)
        thresholds = get_confident_thresholds(sub_y, sub_probs)
        judged = counts[y[lab]] >= self.min_class_rows  # too few rows: no reliable out-of-fold estimate
        strong = np.ones(len(lab), bool)
        if self.relative_threshold is not None:  # confident learning's per-class bar, 0.2 / K at least:
            # with few classes every model's smoothing keeps a wrong label's probability higher (2 classes,
            # 20 flips in 600 rows: 8 found at 0.025, 16 at 0.1, none wrongly)
            rel = max(self.relative_threshold, FEW_CLASSES_BAR / len(present))
            strong &= given_p < rel * thresholds[sub_y]
        if self.max_ratio is not None:  # the predicted class at least K times as probable with K classes ...
            # ... or 1 / max_ratio times when that is less: with few classes every model's smoothing keeps
            # a wrong label's probability above a fixed bar (2 classes: 5 of 20 planted flips found at 1/25)
            strong &= given_p <= max(self.max_ratio, 1.0 / len(present)) * sugg_p[lab]
        flagged[lab] = strong & (sugg[lab] != y[lab]) & judged
        flagged, left_to = self.leave_to(ctx, flagged)

        cj = compute_confident_joint(sub_y, sub_probs)
        noise = noise_matrix(cj, [classes[c] for c in present])
        given = [classes[c] if c >= 0 else None for c in y]
        reasons = [f"given '{given[i]}' (p={score[i]:.2f}) but the corpus says '{classes[sugg[i]]}' "
                   f"(p={sugg_p[i]:.2f})" for i in range(n)]
        extras = {
            "suggested_label": pa.array([classes[sugg[i]] if flagged[i] else None for i in range(n)], pa.string()),
            "suggested_label_prob": pa.array(np.where(flagged, sugg_p, np.nan), pa.float64(), mask=~flagged),
        }
        table = result_table(self.issue, ctx.ids, flagged, score, reasons, extras)
        summary = {"classes": len(present), "labelled_rows": int(len(lab)),
                   "classes_not_judged": [classes[c] for c in present if counts[c] < self.min_class_rows],
                   "cleanlab_candidates": int(cl_issue.sum()), "label_model": ctx.label_model,
                   # The confident joint's off-diagonal share is not a noise rate: with a weak model
                   # (45 overlapping classes) it is 42 % on a corpus with no planted noise and 48 % on
                   # one with 4.7 % (docs/benchmarks.md). No estimator with a trustworthy interval
                   # is available, so none is reported; the share is kept under its own name.
                   "estimated_noise_rate": None,
                   "noise_rate_note": "not estimated: the confident joint of an out-of-fold model "
                                      "measures the model's confusion as much as label noise",
                   "confident_joint_offdiag_share": float(cj[~np.eye(len(present), dtype=bool)].sum()
                                                          / max(cj.sum(), 1)),
                   "flagged_rate": float(flagged.sum() / max(len(lab), 1)),
                   "left_to": left_to}
        return DetectorResult(self.issue, table, summary, tables={"label_noise_matrix": noise})


def noise_matrix(cj: np.ndarray, names: list[str]) -> pa.Table:
    """The confident joint's off-diagonal cells (given x suggested label, ``names`` its rows' classes) as
    the table ``label_noise_matrix``, largest count first."""
    gi, si = np.nonzero(cj)
    off = gi != si
    return pa.table({
        "given_label": pa.array([names[i] for i in gi[off]], pa.string()),
        "suggested_label": pa.array([names[j] for j in si[off]], pa.string()),
        "count": pa.array(cj[gi[off], si[off]].astype(np.int64)),
        "fraction_of_given": pa.array(cj[gi[off], si[off]] / np.maximum(cj[gi[off]].sum(axis=1), 1)),
    }).sort_by([("count", "descending")])
