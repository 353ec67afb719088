"""inherited_label_bias: rows of a pre-training region whose labels systematically disagree with the
downstream truth.

``uim scan`` does not run it (``runs_in = "link"``): ``uim link`` finds the regions from a downstream
set's true labels (:mod:`uimdata.link.bias`) and writes this detector's columns into ``flags`` and its
row into ``detectors``. Declared here, as for every issue: its ``flags`` columns (the suggested label =
the downstream label, that label's share of the row's nearest downstream truth, the region's slice id),
what ``uim curate`` may do with its rows (relabel to the downstream label by default; its relabel wins
over ``label``'s, being downstream evidence) and its summary.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult
from uimdata.errors import UimError

ISSUE = "inherited_label_bias"


@register
class InheritedLabelBiasDetector(Detector):
    issue: ClassVar[str] = ISSUE
    description: ClassVar[str] = (
        "Pre-training rows in a region whose labels systematically disagree with the downstream truth "
        "(found by `uim link`); suggested label = the downstream label.")
    runs_in: ClassVar[str] = "link"
    #: the downstream label of the row's region
    SUGGESTED_LABEL: ClassVar[str] = f"{ISSUE}_suggested_label"
    #: the suggested label's share of the row's nearest downstream truth (the evidence's strength)
    SUGGESTED_PROB: ClassVar[str] = f"{ISSUE}_suggested_prob"
    #: the region's slice in ``uim link``'s ``slices`` table
    SLICE: ClassVar[str] = f"{ISSUE}_slice"
    extra_columns: ClassVar[dict[str, pa.DataType]] = {SUGGESTED_LABEL: pa.string(), SUGGESTED_PROB: pa.float64(),
                                                       SLICE: pa.string()}

    curate_actions: ClassVar[tuple[str, ...]] = ("drop", "relabel", "keep", "reweight")
    curate_rule: ClassVar[dict[str, Any]] = {"action": "relabel", "min_prob": 0.6, "otherwise": "drop"}
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {
        "conservative": {"action": "relabel", "min_prob": 0.8, "otherwise": "keep"},
        "aggressive": {"action": "drop"},
    }
    suggestion_columns: ClassVar[tuple[str, str] | None] = (SUGGESTED_LABEL, SUGGESTED_PROB)
    #: downstream evidence: its relabel wins over ``label``'s
    relabel_priority: ClassVar[int] = 1

    @classmethod
    def slice_id(cls, region: int) -> str:
        """The slice id of bias region number ``region`` (``slices``, ``flags``, ``downstream``)."""
        return f"{ISSUE}:{region}"

    def detect(self, ctx: Any) -> DetectorResult:  # noqa: ARG002
        raise UimError(f"detector '{ISSUE}' runs in `uim link`, not in `uim scan`",
                       hint="run `uim link RUN DOWNSTREAM` on the finished scan")
