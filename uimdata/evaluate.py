"""Score detector flags against planted truth (benchmarks and tests).

Duplicates are scored pair-aware: which member of a duplicate group is kept is a policy
(uimdata keeps the earliest row), so a flagged row is correct when it is grouped with a row of
its own planted group, and a planted pair is found when both rows land in one predicted cluster.
Per-row issues (corrupted, label, outlier) are scored as plain sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from uimdata.unionfind import pair_groups


@dataclass
class PRF:
    precision: float
    recall: float
    f1: float
    n_flagged: int
    n_truth: int

    @classmethod
    def of(cls, tp_p: int, n_flagged: int, tp_r: int, n_truth: int) -> PRF:
        p = tp_p / n_flagged if n_flagged else 1.0
        r = tp_r / n_truth if n_truth else 1.0
        return cls(p, r, 2 * p * r / (p + r) if p + r else 0.0, n_flagged, n_truth)

    def row(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
                "flagged": self.n_flagged, "planted": self.n_truth}


def set_prf(flagged: set[str], truth: set[str]) -> PRF:
    tp = len(flagged & truth)
    return PRF.of(tp, len(flagged), tp, len(truth))


def pair_prf(flagged_to_kept: dict[str, str], cluster_of: dict[str, object],
             truth_pairs: list[tuple[str, str]]) -> PRF:
    """``flagged_to_kept``: flagged row -> the member it duplicates; ``cluster_of``: row -> cluster."""
    group = pair_groups(truth_pairs)
    tp_p = sum(1 for f, k in flagged_to_kept.items() if f in group and group[f] == group.get(k))
    tp_r = sum(1 for c, s in truth_pairs
               if cluster_of.get(c) is not None and cluster_of.get(c) == cluster_of.get(s))
    return PRF.of(tp_p, len(flagged_to_kept), tp_r, len(truth_pairs))


def duplicate_scores(flags: pl.DataFrame, truth: pl.DataFrame) -> dict[str, PRF]:
    """Pair-aware P/R/F1 for exact and near duplicates from a ``flags`` frame and a truth frame
    (``id``, ``defect``, ``source_id``)."""
    out = {}
    cluster_of = dict(zip(flags["id"], flags["duplicate_cluster"])) if "duplicate_cluster" in flags else {}
    for issue, of_col in (("exact_duplicate", "duplicate_of"), ("near_duplicate", "near_duplicate_of")):
        if f"is_{issue}_issue" not in flags.columns:
            continue
        fl = flags.filter(pl.col(f"is_{issue}_issue"))
        pairs = [(c, s) for c, s in truth.filter(pl.col("defect") == issue).select("id", "source_id").iter_rows()]
        out[issue] = pair_prf(dict(zip(fl["id"], fl[of_col])), cluster_of, pairs)
    return out


def membership_prf(in_cluster: set[str], truth_pairs: list[tuple[str, str]],
                   exact_ids: set[str] | None = None) -> PRF:
    """Row-level P/R/F1 where every member of a planted group (source and copies) is a positive and a
    prediction is any row placed in a duplicate cluster (Datalab's ``near_duplicate`` semantics).
    Rows in ``exact_ids`` are left out of the prediction (they belong to exact duplicates)."""
    truth = {x for pair in truth_pairs for x in pair}
    pred = in_cluster - (exact_ids or set())
    return set_prf(pred, truth)


def mislabelled_rows(truth: pl.DataFrame) -> set[str]:
    """The rows of a synthetic benchmark whose given label is wrong: planted label noise, the rows of a
    poisoned concept, and the exact or near copies planted from any of them (a copy keeps its source's
    label). What a label flag is right about, whichever planted defect put the wrong label there."""
    wrong = set(truth.filter((pl.col("defect") == "label_noise") | (pl.col("kind") == "poisoned_concept"))["id"])
    if "source_id" in truth.columns:
        wrong |= set(truth.filter(pl.col("source_id").is_in(list(wrong)))["id"])
    return wrong
