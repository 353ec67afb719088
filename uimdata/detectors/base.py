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

Everything else the package knows about an issue is declared on its detector class too, with
defaults here: where it runs (``runs_in``), what ``uim curate`` may do with its rows (``curate_*``,
``suggestion_columns``, ``relabel_priority``, ``duplicate`` with :meth:`Detector.duplicate_links`,
``tail_guard``, ``reweight_by_frequency`` with :meth:`Detector.frequency_weights`), the columns the
report shows beside its examples (``example_columns``, ``kept_column``, ``example_suggestion``) and
its line in ``uim summary`` (:meth:`Detector.summary_line`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from uimdata.detectors.text_stats import length_slices
from uimdata.errors import UimError
from uimdata.stages.base import Resources, Stage

if TYPE_CHECKING:
    import polars as pl

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


def flag_issues(columns: Sequence[str]) -> list[str]:
    """The issues a ``flags`` table has columns for (one ``is_<issue>_issue`` each), in column order."""
    return [c.removeprefix("is_").removesuffix("_issue") for c in columns
            if c.startswith("is_") and c.endswith("_issue")]


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
    """A global detector: reads what it needs from the run directory.

    A detector module declares everything about its issue on its class (``docs/architecture.md``,
    "Adding a detector"); the defaults below fit a detector that only flags rows.
    """

    issue: ClassVar[str]
    #: one sentence for the README / ``uim summary``: what is flagged and why it matters
    description: ClassVar[str] = ""
    #: extra per-row columns this detector adds to ``flags`` (name -> Arrow type), after the three every
    #: detector has: part of :meth:`flag_columns`, which the scan checks (see :meth:`check_result`)
    extra_columns: ClassVar[dict[str, pa.DataType]] = {}
    #: the command that writes its columns: ``"scan"`` (``uim scan`` runs it) or ``"link"`` (``uim link``
    #: writes them from downstream evidence; ``uim scan --detectors`` refuses it)
    runs_in: ClassVar[str] = "scan"
    #: its flags mark a defect of the row; False for a property of the corpus's shape (``long_tail``), which
    #: ``uim link`` does not name as a slice's dominant issue
    defect: ClassVar[bool] = True
    #: issues that explain a row better than this one: the scan runs those detectors first (:func:`deferring_last`)
    #: and a global detector reads their flags through ``ctx.flagged(issue)`` to leave those rows to them
    defer_to: ClassVar[tuple[str, ...]] = ()

    # --- curation (``uim curate``, uimdata/curate/) ------------------------------------------------------
    #: the actions a policy may give this issue (any of drop, relabel, reweight, keep), in the order an
    #: error message lists them; ``relabel`` needs ``suggestion_columns``
    curate_actions: ClassVar[tuple[str, ...]] = ("drop", "keep", "reweight")
    #: its table in the base policy: the ``action`` and its options (``min_prob``, ``otherwise`` for
    #: relabel; ``max_weight`` for reweight; ``keep``, ``per_label`` for a duplicate's drop)
    curate_rule: ClassVar[dict[str, Any]] = {"action": "keep"}
    #: where a built-in policy (``conservative``, ``default``, ``aggressive``) differs from the base: policy
    #: -> table (the same action: merged into ``curate_rule``; another action: replaces it)
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {}
    #: the ``flags`` columns holding the suggested label and its probability (what ``relabel`` applies)
    suggestion_columns: ClassVar[tuple[str, str] | None] = None
    #: when two issues relabel one row, the higher priority's suggestion wins (a tie: the first in ``flags``)
    relabel_priority: ClassVar[int] = 0
    #: a duplicate-type issue: ``drop`` keeps one member per duplicate cluster (:meth:`duplicate_links`)
    duplicate: ClassVar[bool] = False
    #: the evidence the policy's ``[tail]`` guard weighs before this issue's drop or relabel may take a
    #: member of a rare class: ``"knn"`` (its neighbours carry its label), ``"prior"`` (its label still
    #: wins once the out-of-fold probabilities are divided by the class priors); () = not guarded
    tail_guard: ClassVar[tuple[str, ...]] = ()
    #: ``reweight`` weights by :meth:`frequency_weights`, counted on the curated set (after every drop and
    #: relabel), rather than ``max_weight`` for every flagged row
    reweight_by_frequency: ClassVar[bool] = False

    # --- what the report shows beside its worst examples ------------------------------------------------
    #: (header, ``flags`` column) shown before the text
    example_columns: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: duplicates: the ``flags`` column naming the kept member, shown beside the flagged row
    kept_column: ClassVar[str | None] = None
    #: show the given label and the suggested one (``suggestion_columns``) after the text
    example_suggestion: ClassVar[bool] = False

    @classmethod
    def summary_line(cls, summary: dict[str, Any]) -> str | None:  # noqa: ARG003
        """Its line in ``uim summary`` from the summary it wrote (not called for a skipped detector's
        ``{"skipped": why}``); None = no line."""
        return None

    @classmethod
    def duplicate_links(cls, flags: pl.DataFrame) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Duplicate issues: pairs of ``flags`` rows in one duplicate cluster (read from its columns), and
        which rows it flags as the redundant copies."""
        raise NotImplementedError(f"detector '{cls.issue}' is not a duplicate issue")

    @classmethod
    def frequency_weights(cls, flags: pl.DataFrame, labels: list | None, kept: np.ndarray,
                          max_weight: float) -> np.ndarray:
        """``reweight_by_frequency`` issues: each row's weight, from its ``flags`` columns, the curated
        ``labels`` (None: the corpus has none) and the rows ``kept``; in [1, ``max_weight``]."""
        raise NotImplementedError(f"detector '{cls.issue}' does not weight by frequency")

    @classmethod
    def flag_columns(cls) -> dict[str, pa.DataType]:
        """The columns this detector adds to ``flags``, in order: ``is_<issue>_issue``, ``<issue>_score``,
        ``<issue>_reason``, then its ``extra_columns``."""
        return {is_col(cls.issue): pa.bool_(), score_col(cls.issue): pa.float64(),
                reason_col(cls.issue): pa.string(), **cls.extra_columns}

    def check_result(self, table: pa.Table) -> None:
        """A result table holds ``id`` and then exactly :meth:`flag_columns` (names, order, types)."""
        want = list(self.flag_columns().items())
        got = list(zip(table.schema.names, table.schema.types))
        if table.schema.names[:1] != ["id"] or got[1:] != want:
            raise RuntimeError(f"detector '{self.issue}' returned the columns {[f'{n}: {t}' for n, t in got]}, "
                               f"it declares {[f'{n}: {t}' for n, t in want]}")

    def leave_to(self, ctx: ScanContext, flagged: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
        """``flagged`` without the rows that the detectors named in ``defer_to`` flagged, and how many rows
        each of them took (the summary's ``left_to``; a detector that did not run takes none)."""
        left: dict[str, int] = {}
        for issue in self.defer_to:
            other = ctx.flagged(issue)
            if other is not None:
                left[issue] = int((flagged & other).sum())
                flagged = flagged & ~other
        return flagged, left

    def skip_reason(self, ctx: ScanContext) -> str | None:  # noqa: ARG002
        """Why this detector cannot run on this corpus (e.g. no labels), or None."""
        return None

    def detect(self, ctx: ScanContext) -> DetectorResult:
        raise NotImplementedError


class BatchDetector(Detector, Stage):
    """A detector that scores each row on its own; ``process`` returns the result columns.

    The scan runs its batch detectors in one pass (:class:`SharedPass`): ``process(batch, shared)``
    gets a dict that lives for one part of a batch and is the same for every detector of the pass,
    through which they share what they compute about the same texts (``corrupted`` and
    ``low_quality`` share each text's statistics: ``text_stats.stats_of``). ``process`` must give
    the same result with or without it."""

    needs: ClassVar[tuple[str, ...]] = ("id", "text")
    #: the order within a shared pass (lower first): a detector whose per-text statistics answer
    #: another's requests goes first (``low_quality``'s repetition statistics hold ``corrupted``'s)
    pass_order: ClassVar[int] = 0

    def process(self, batch: pa.Table, shared: dict | None = None) -> pa.Table:
        raise NotImplementedError

    def finish(self, table: pa.Table, texts: list[str | None]) -> pa.Table:  # noqa: ARG002
        """A corpus-level pass over the concatenated per-batch results (aligned with ``texts``, the
        whole corpus): rules calibrated on the corpus itself (e.g. ``corrupted``'s truncation rule)
        run here. Default: the table unchanged."""
        return table

    def summarize(self, table: pa.Table) -> dict[str, Any]:  # noqa: ARG002
        return {}


#: the column of a :class:`SharedPass` result that holds a detector's seconds (spread over its rows)
SECONDS_COL = "seconds"


class SharedPass(Stage):
    """Several batch detectors as one stage: each batch is cut into parts of bounded text
    (``text_stats.length_slices``), and every detector processes a part in turn with one ``shared`` dict,
    so that what the first computes about a text the next reads. Its result holds each detector's
    columns as ``<i>:<column>`` (``i`` its place in ``dets``) and the seconds it spent on the batch
    (``<i>:seconds``, spread evenly over the rows); :meth:`split` takes them apart."""

    def __init__(self, dets: Sequence[BatchDetector]) -> None:
        if not dets:
            raise ValueError("SharedPass needs at least one batch detector")
        self.dets = list(dets)
        self.run_order = sorted(range(len(self.dets)), key=lambda i: self.dets[i].pass_order)
        self.name = "+".join(self.dets[i].issue for i in self.run_order)  # type: ignore[misc]
        self.needs = tuple(dict.fromkeys(c for d in self.dets for c in d.needs))  # type: ignore[misc]
        self.adds = tuple(f"{i}:{c}" for i, d in enumerate(self.dets) for c in d.adds)  # type: ignore[misc]
        self.batch_size = min(d.batch_size for d in self.dets)  # type: ignore[misc]
        self.parallel = all(d.parallel for d in self.dets)  # type: ignore[misc]
        self.resources = Resources(  # type: ignore[misc]
            cpus=max(d.resources.cpus for d in self.dets), gpus=max(d.resources.gpus for d in self.dets))
        # a detector written as ``process(self, batch)`` (no ``shared``) is called as such
        self.takes_shared = ["shared" in inspect.signature(d.process).parameters for d in self.dets]

    def setup(self) -> None:
        for det in self.dets:
            det.setup()

    def process(self, batch: pa.Table) -> pa.Table:
        lengths = pc.utf8_length(batch.column("text")).fill_null(0).to_pylist()  # characters, as len() counts
        parts: list[list[pa.Table]] = [[] for _ in self.dets]
        seconds = [0.0] * len(self.dets)
        for part in length_slices(lengths) if batch.num_rows else [slice(0, 0)]:
            sub = batch.slice(part.start, part.stop - part.start)
            shared: dict = {}
            for i in self.run_order:
                start = time.perf_counter()
                det = self.dets[i]
                parts[i].append(det.process(sub, shared) if self.takes_shared[i] else det.process(sub))
                seconds[i] += time.perf_counter() - start
        cols: dict[str, Any] = {"id": batch.column("id")}
        n = max(batch.num_rows, 1)
        for i, tables in enumerate(parts):
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            cols.update({f"{i}:{c}": table.column(c) for c in table.column_names if c != "id"})
            cols[f"{i}:{SECONDS_COL}"] = pa.array(np.full(batch.num_rows, seconds[i] / n), pa.float64())
        return pa.table(cols)

    def split(self, table: pa.Table) -> list[tuple[pa.Table, float]]:
        """Each detector's result table (``id`` and its columns, as its ``process`` returned them) and
        the seconds it spent, in the order of ``dets``."""
        out = []
        for i in range(len(self.dets)):
            prefix = f"{i}:"
            names = [c for c in table.column_names if c.startswith(prefix) and c != f"{i}:{SECONDS_COL}"]
            own = pa.table({"id": table.column("id"), **{c[len(prefix):]: table.column(c) for c in names}})
            out.append((own, float(pc.sum(table.column(f"{i}:{SECONDS_COL}")).as_py() or 0.0)))
        return out


def deferring_last(dets: list[Detector]) -> list[Detector]:
    """``dets`` in their order, except that a detector comes after the detectors it defers to (a cycle
    of deferrals is left as it is after a bounded number of moves)."""
    out = list(dets)
    for _ in range(len(out) ** 2):
        moves = [(i, max(j for j in range(i + 1, len(out)) if out[j].issue in det.defer_to))
                 for i, det in enumerate(out) if any(o.issue in det.defer_to for o in out[i + 1:])]
        if not moves:
            break
        i, j = moves[0]
        out.insert(j, out.pop(i))
    return out
