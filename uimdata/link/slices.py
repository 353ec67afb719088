"""Slices: the regions of the joint space that ``uim link`` ranks, and the ``slices`` table.

A slice is a set of downstream rows with a set of pre-training rows: a k-means cluster of the run
(``long_tail``'s ``cluster_id``; a downstream row belongs to the cluster most of its neighbours are in),
a value of a ``--slice-col`` (a downstream column, or a pre-training column: ``uimdata.groups.pre_slices``)
or an inherited-label-bias region. Per slice: downstream rows, errors, the error rate with a 95 % interval
(Wilson; normal for a loss), its lift over the overall rate, pre-training rows, their density, the share
flagged by each issue and the dominant issue. Slices are ranked by tier, then by ``score`` = the lower bound
of the lift's interval; slices with fewer than ``min_down`` downstream rows are listed but not ranked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from uimdata.detectors import REGISTRY
from uimdata.detectors.inherited_label_bias import InheritedLabelBiasDetector as Bias
from uimdata.knn import neighbour_share
from uimdata.link.bias import BiasRegion
from uimdata.stats import binom_sf_ge, mean_interval, wilson

#: (slice_id, kind, key, downstream rows, pre-training rows)
Slice = tuple[str, str, str, np.ndarray, np.ndarray]


def cluster_members(cluster: np.ndarray) -> dict[int, np.ndarray]:
    """k-means cluster id -> its pre-training rows (-1: rows without a cluster)."""
    order = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[order], np.unique(cluster))
    return dict(zip(np.unique(cluster).tolist(), np.split(order, bounds[1:])))


def cluster_slices(members: dict[int, np.ndarray], down_cluster: np.ndarray) -> list[Slice]:
    """One slice per cluster that holds pre-training or downstream rows."""
    out = []
    for c in sorted(set(members) | set(down_cluster[down_cluster >= 0].tolist())):
        if c < 0:
            continue
        out.append((f"cluster:{c}", "cluster", str(c), np.flatnonzero(down_cluster == c),
                    members.get(c, np.zeros(0, np.int64))))
    return out


def column_slices(col: str, values: np.ndarray, nbr: np.ndarray) -> list[Slice]:
    """One slice per value of a downstream column: its rows and their pre-training neighbours."""
    out = []
    for v in sorted({x for x in values if x is not None}):
        rows = np.flatnonzero(values == v)
        out.append((f"{col}:{v}", col, str(v), rows, np.unique(nbr[rows])))
    return out


def region_slices(regions: list[BiasRegion], nbr: np.ndarray, weights: np.ndarray,
                  n_pre: int) -> tuple[list[Slice], np.ndarray]:
    """One slice per bias region: its rows and the downstream rows at least half of whose (weighted)
    neighbours are in it; and per downstream row, the index of its region (-1 = none)."""
    out = []
    down_region = np.full(len(nbr), -1, np.int64)
    for i, r in enumerate(regions):
        member = np.zeros(n_pre, bool)
        member[r.rows] = True
        rows = np.flatnonzero(neighbour_share(nbr, weights, member) >= 0.5)
        down_region[rows] = i
        out.append((Bias.slice_id(i), Bias.issue, f"{r.given} -> {r.suggested}", rows, r.rows))
    return out, down_region


def slice_records(defs: list[Slice], error: np.ndarray, flag_mat: dict[str, np.ndarray],
                  corpus_rate: dict[str, float], density: np.ndarray,
                  binary: bool) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Per slice: its record (counts, error rate, density, share flagged per issue, dominant issue) and
    the known outcomes of its downstream rows."""
    recs = []
    for sid, kind, key, drows, prows in defs:
        e = error[drows]
        e = e[~np.isnan(e)]
        rec = {"slice_id": sid, "kind": kind, "key": key, "n_down": len(drows), "n_err": None,
               "error_rate": float(e.mean()) if len(e) else None, "n_pre": len(prows),
               "density": float(density[prows].mean()) if len(prows) else None}
        if binary:
            rec["n_err"] = int(e.sum())
        for i, v in flag_mat.items():
            rec[f"frac_{i}"] = float(v[prows].mean()) if len(prows) else None
        rec["dominant_issue"], rec["dominant_enrichment"] = dominant_issue(
            {i: rec[f"frac_{i}"] for i in flag_mat}, corpus_rate, len(prows))
        recs.append((rec, e))
    return recs


def dominant_issue(fracs: dict[str, float | None], corpus_rate: dict[str, float],
                   n_pre: int) -> tuple[str | None, float | None]:
    """The most enriched defect over its corpus-wide rate (a detector whose ``defect`` is False, such as
    long_tail, is not one), when the enrichment is at least 2x and significant (one-sided binomial,
    p < 0.001): (issue, enrichment), else (None, None)."""
    found, best = (None, None), 0.0
    for i, frac in fracs.items():
        frac = frac or 0.0
        if not getattr(REGISTRY.get(i), "defect", True) or frac == 0 or n_pre == 0:
            continue
        enrich = frac / max(corpus_rate[i], 1e-9)
        k_flag = int(round(frac * n_pre))
        if enrich >= 2 and enrich > best and binom_sf_ge(k_flag, n_pre, corpus_rate[i]) < 1e-3:
            best, found = enrich, (i, enrich)
    return found


def rank_slices(recs: list[tuple[dict[str, Any], np.ndarray]], binary: bool, overall: float,
                carriers: dict[str, tuple[str, str]], region_ids: set[str], min_down: int) -> pl.DataFrame:
    """The slices table, ranked: lift with its 95 % interval, ``score``, the bias labels of slices that
    carry a region (``carriers``), ``tier`` and ``rank`` (null for slices with fewer than ``min_down``
    known outcomes). ``region_ids``: the slice ids of the bias regions.

    Tiers: 0 = an inherited-label-bias region (downstream truth contradicts the corpus labels there),
    1 = error significantly above overall and explained by an enriched issue or a bias region inside,
    2 = the rest; ranked by (tier, score)."""
    if binary:
        lo, hi = wilson(np.array([r["n_err"] for r, _ in recs]), np.array([len(e) for _, e in recs]))
    else:
        lo, hi = mean_interval([e for _, e in recs])
    base = max(overall, 1e-12)
    rows_out = []
    for (rec, e), a, b in zip(recs, lo, hi):
        rec["lift"] = rec["error_rate"] / base if rec["error_rate"] is not None else None
        rec["lift_lo"], rec["lift_hi"] = float(a / base), float(b / base)
        rec["score"] = rec["lift_lo"]
        bias = carriers.get(rec["slice_id"])
        rec["inherited_label_bias"] = bias is not None
        rec["bias_given_label"], rec["bias_downstream_label"] = bias if bias else (None, None)
        if rec["slice_id"] in region_ids:
            rec["tier"] = 0
        elif rec["lift_lo"] > 1 and (rec["dominant_issue"] or bias):
            rec["tier"] = 1
        else:
            rec["tier"] = 2
        rec["rankable"] = len(e) >= min_down
        rows_out.append(rec)
    slices = pl.DataFrame(rows_out, infer_schema_length=None)
    slices = slices.sort(["rankable", "tier", "score"], descending=[True, False, True], nulls_last=True)
    return slices.with_columns(
        pl.when(pl.col("rankable")).then(pl.int_range(1, pl.len() + 1)).otherwise(None).cast(pl.Int64).alias("rank")
    ).drop("rankable")


def bias_carriers(regions: list[BiasRegion], cluster: np.ndarray,
                  members: dict[int, np.ndarray]) -> dict[str, tuple[str, str]]:
    """Slices that carry a bias region, with its (given, suggested) labels: the region's own slice, and
    each cluster holding at least half of the region or whose rows are at least half the region's."""
    out = {}
    for i, r in enumerate(regions):
        out[Bias.slice_id(i)] = (r.given, r.suggested)
        cs, counts = np.unique(cluster[r.rows], return_counts=True)
        for c, cnt in zip(cs.tolist(), counts.tolist()):
            if cnt >= 0.5 * len(r.rows) or cnt >= 0.5 * len(members.get(c, [])):
                out.setdefault(f"cluster:{c}", (r.given, r.suggested))
    return out
