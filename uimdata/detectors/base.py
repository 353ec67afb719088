"""The detector contract (as cleanlab's issue managers).

Every detector has an ``issue`` name and yields, per corpus row:

* ``is_<issue>_issue`` - bool, the row is flagged;
* ``<issue>_score``    - float in [0, 1], lower = worse (as in cleanlab);
* ``<issue>_reason``   - a short human reason, null for rows that are not flagged;
* any ``extra_columns`` the detector declares (e.g. ``duplicate_of``).

plus a one-row summary (a dict of plain values). Detectors that look at one row at a time are
:class:`BatchDetector` stages and run under any executor; detectors that need the whole corpus
(the kNN graph, all labels) are global: :meth:`Detector.detect` reads the run's artifacts through a
:class:`~uimdata.context.ScanContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pyarrow as pa

from uimdata.errors import UimError
from uimdata.stages.base import Stage

if TYPE_CHECKING:
    from uimdata.context import ScanContext


T = TypeVar("T")


def thresholds_with(kind: type[T], given: T | None, overrides: dict[str, Any], issue: str) -> T:
    """A detector's thresholds dataclass ``kind``: ``given`` (or the defaults) with ``overrides``
    applied; an override that names no threshold is a one-line error listing the known ones."""
    known = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UimError(f"unknown threshold(s) for detector '{issue}'",
                       expected=f"any of {sorted(known)}", got=repr(unknown))
    return replace(given if given is not None else kind(), **overrides)  # type: ignore[type-var]


def is_col(issue: str) -> str:
    return f"is_{issue}_issue"


def score_col(issue: str) -> str:
    return f"{issue}_score"


def reason_col(issue: str) -> str:
    return f"{issue}_reason"


@dataclass
class DetectorResult:
    """Per-row columns (aligned with the ``samples`` table order) and a one-row summary."""

    issue: str
    table: pa.Table
    summary: dict[str, Any] = field(default_factory=dict)
    #: extra whole-run tables (name -> table) that land in uim.duckdb, e.g. ``label_noise_matrix``
    tables: dict[str, pa.Table] = field(default_factory=dict)


def result_table(issue: str, ids: pa.Array, is_issue: np.ndarray, score: np.ndarray,
                 reason: list[str | None], extras: dict[str, pa.Array] | None = None) -> pa.Table:
    """Build a detector's per-row table and check the contract on the way."""
    is_issue = np.asarray(is_issue, dtype=bool)
    score = np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0)
    n = len(ids)
    if not (len(is_issue) == len(score) == len(reason) == n):
        raise ValueError(f"detector '{issue}' returned misaligned columns for {n} rows")
    reason = [r if flagged else None for r, flagged in zip(reason, is_issue)]
    cols: dict[str, Any] = {
        "id": ids,
        is_col(issue): pa.array(is_issue, pa.bool_()),
        score_col(issue): pa.array(score, pa.float64()),
        reason_col(issue): pa.array(reason, pa.string()),
    }
    cols.update(extras or {})
    return pa.table(cols)


class Detector:
    """A global detector: reads what it needs from the run directory."""

    issue: ClassVar[str]
    #: one sentence for the README / ``uim summary``: what is flagged and why it matters
    description: ClassVar[str] = ""
    #: extra per-row columns this detector adds to ``flags`` (name -> Arrow type)
    extra_columns: ClassVar[dict[str, pa.DataType]] = {}
    #: artifacts it reads: any of "samples", "embeddings", "neighbors"
    requires: ClassVar[tuple[str, ...]] = ("samples",)

    def skip_reason(self, ctx: ScanContext) -> str | None:  # noqa: ARG002
        """Why this detector cannot run on this corpus (e.g. no labels), or None."""
        return None

    def detect(self, ctx: ScanContext) -> DetectorResult:
        raise NotImplementedError


class BatchDetector(Detector, Stage):
    """A detector that scores each row on its own; ``process`` returns the result columns."""

    needs: ClassVar[tuple[str, ...]] = ("id", "text")

    def finish(self, table: pa.Table, texts: list[str | None]) -> pa.Table:  # noqa: ARG002
        """A corpus-level pass over the concatenated per-batch results (aligned with ``texts``, the
        whole corpus): rules calibrated on the corpus itself (e.g. ``corrupted``'s truncation rule)
        run here. Default: the table unchanged."""
        return table

    def summarize(self, table: pa.Table) -> dict[str, Any]:  # noqa: ARG002
        return {}
