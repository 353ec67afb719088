"""exact_duplicate: rows whose normalised text equals an earlier row's.

The first occurrence is kept; every later copy is flagged with ``duplicate_of`` = the kept id.
Empty texts are left to the ``corrupted`` detector.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import pyarrow as pa

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table
from uimdata.stages.ingest import text_hash

EMPTY_HASH = text_hash("")


@register
class ExactDuplicateDetector(Detector):
    issue: ClassVar[str] = "exact_duplicate"
    description: ClassVar[str] = ("Same text after Unicode (NFKC) normalisation, case folding and whitespace "
                                  "collapsing; the first occurrence is kept, later copies are flagged.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"duplicate_of": pa.string()}
    duplicate: ClassVar[bool] = True
    curate_rule: ClassVar[dict[str, Any]] = {"action": "drop", "keep": "first", "per_label": True}
    kept_column: ClassVar[str | None] = "duplicate_of"

    @classmethod
    def duplicate_links(cls, flags: pl.DataFrame) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Each copy linked to the row it copies (``duplicate_of``); the copies are the redundant rows."""
        pos = {x: j for j, x in enumerate(flags["id"].to_list())}
        of = flags["duplicate_of"].to_list()
        return [(j, pos[o]) for j, o in enumerate(of) if o is not None], np.array([o is not None for o in of], bool)

    def detect(self, ctx: Any) -> DetectorResult:
        df = pl.from_arrow(ctx.samples.select(["id", "text_hash"])).with_row_index("pos")
        first = df.group_by("text_hash").agg(pl.col("pos").min().alias("first_pos"),
                                             pl.len().alias("copies"))
        df = df.join(first, on="text_hash", how="left").sort("pos")
        first_pos = df["first_pos"].to_numpy()
        pos = df["pos"].to_numpy()
        is_dup = (first_pos != pos) & (df["text_hash"].to_numpy() != EMPTY_HASH)
        ids = ctx.ids
        kept = ids.take(pa.array(first_pos)).to_pylist()
        copies = df["copies"].to_numpy()
        reasons = [f"exact copy of {k} ({c} copies in all)" for k, c in zip(kept, copies)]
        dup_of = pa.array([k if d else None for k, d in zip(kept, is_dup)], pa.string())
        table = result_table(self.issue, ids, is_dup, np.where(is_dup, 0.0, 1.0), reasons,
                             {"duplicate_of": dup_of})
        groups = int(((copies > 1) & (first_pos == pos) & ~(df["text_hash"].to_numpy() == EMPTY_HASH)).sum())
        return DetectorResult(self.issue, table, {"duplicate_groups": groups})
