"""``link()``: from a finished run and a downstream set to the link tables, step by step.

read the run and the downstream set -> each downstream row's ``k`` nearest pre-training rows ->
inherited-label-bias regions -> slices (defined, measured, ranked, described) -> issue attribution ->
the tables, computed in memory first, then written (each file atomically) and ``uim.duckdb`` rebuilt:
a failed link leaves the run as it was. Re-running replaces the previous link's tables.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from uimdata.detectors.base import flag_issues, is_col
from uimdata.detectors.inherited_label_bias import InheritedLabelBiasDetector as Bias
from uimdata.downstream import Downstream, DownstreamSpec, label_overlap, read_downstream
from uimdata.knn import cosine_weights, neighbour_mean, neighbour_share, neighbour_values, weighted_vote
from uimdata.link.attribution import issue_attribution
from uimdata.link.bias import (
    BiasRegion,
    bias_flags,
    find_bias_regions,
    merge_regions,
    region_of_rows,
    self_agreeing,
    trim_regions,
)
from uimdata.link.config import LinkConfig, LinkResult
from uimdata.link.describe import describe_slices
from uimdata.link.slices import (
    Slice,
    bias_carriers,
    cluster_members,
    cluster_slices,
    column_slices,
    rank_slices,
    region_slices,
    slice_records,
)
from uimdata.rundir import RunDir, atomic_write_parquet, atomic_write_text


@dataclass
class _Inputs:
    run: RunDir
    meta: dict[str, Any]
    samples: pa.Table
    flags: pl.DataFrame         # the scan's flags, without an earlier link's bias columns
    emb: np.ndarray
    down: Downstream
    pre_cols: list[str]         # --slice-col names that are pre-training columns
    warnings: list[str]


@dataclass
class _Bias:
    regions: list[BiasRegion]
    given_share: np.ndarray
    other_share: np.ndarray
    note: str | None            # why the bias regions were not looked for
    region_of: np.ndarray       # per pre-training row, its region (-1 = none)
    cluster: np.ndarray         # per pre-training row, its k-means cluster
    graph: Any                  # the run's kNN graph (uimdata.stages.index.KnnGraph)


def link(cfg: LinkConfig) -> LinkResult:
    from uimdata.stages.index import cross_search

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    inp = _read_inputs(cfg)
    timings["read+embed"] = time.perf_counter() - t0

    t = time.perf_counter()
    nbr, cos = cross_search(inp.emb, inp.down.embeddings, cfg.k)
    timings["knn"] = time.perf_counter() - t
    weights = cosine_weights(cos)
    error = inp.down.frame["error"].to_numpy().astype(float)
    binary = inp.down.outcome != "loss"
    overall = float(np.nanmean(error))

    t = time.perf_counter()
    bias = _find_bias(cfg, inp)
    timings["bias"] = time.perf_counter() - t

    t = time.perf_counter()
    flag_mat = _flag_matrix(inp.flags, bias)
    slices, defs, down_cluster, down_region = _slices(cfg, inp, bias, flag_mat, nbr, weights, error, binary,
                                                      overall)
    timings["slices"] = time.perf_counter() - t

    t = time.perf_counter()
    shares = {i: neighbour_share(nbr, weights, v) for i, v in flag_mat.items()}
    attribution = issue_attribution(error, shares, binary, alpha=cfg.alpha)
    timings["attribution"] = time.perf_counter() - t

    ids = inp.samples.column("id").to_pylist()
    tables = {"downstream": _downstream_table(inp.down.frame, ids, down_cluster, down_region, nbr, cos, shares),
              "slices": slices, "slice_rows": _slice_rows(defs, ids), "issue_attribution": attribution}
    info = {"downstream": cfg.downstream, "rows": inp.down.frame.height, "outcome": inp.down.outcome,
            "columns": inp.down.columns, "error_rate": overall, "k": nbr.shape[1], "regions": len(bias.regions),
            "note": bias.note}
    _write(cfg, inp, bias, tables, info, timings, t0)
    return LinkResult(inp.run, slices, attribution, inp.down.frame.height, overall, inp.down.outcome,
                      len(bias.regions), timings, inp.warnings)


def _read_inputs(cfg: LinkConfig) -> _Inputs:
    """The run (samples, flags without an earlier link's columns, embeddings) and the downstream set,
    embedded in the run's space; ``--slice-col`` names split into pre-training and downstream columns."""
    from uimdata.groups import pre_slice_cols

    run = RunDir(cfg.run)
    meta = run.read_meta()
    samples = run.read_samples()
    flags = pl.read_parquet(run.require(run.flags, "scan"))
    if Bias.issue in flag_issues(flags.columns):
        flags = flags.drop([c for c in Bias.flag_columns() if c in flags.columns])
    emb = run.read_embeddings()
    pre_cols = pre_slice_cols(cfg.slice_cols, samples, meta, cfg.downstream)  # corpus columns (groups.py)
    down_cols = tuple(c for c in cfg.slice_cols if c not in pre_cols)
    down = read_downstream(DownstreamSpec.of(cfg, slice_cols=down_cols), meta, emb.shape[1])
    d = down.frame
    warnings = (label_overlap(samples.column("label").to_pylist(), d["label"].to_list(), cfg.downstream,
                              refuse=False)
                if "label" in samples.column_names and "label" in d.columns else [])
    return _Inputs(run, meta, samples, flags, emb, down, pre_cols, warnings)


def _find_bias(cfg: LinkConfig, inp: _Inputs) -> _Bias:
    """The inherited-label-bias regions (when both sides have labels): found, merged per concept,
    trimmed to their cores and kept where the corpus agrees with itself."""
    from uimdata.stages.index import read_graph

    samples, d = inp.samples, inp.down.frame
    n = samples.num_rows
    pre_labels = (np.array(samples.column("label").to_pylist(), dtype=object)
                  if "label" in samples.column_names else None)
    regions: list[BiasRegion] = []
    given_share, other_share = np.full(n, np.nan), np.full(n, np.nan)
    note = None
    graph = read_graph(inp.run, n)
    if pre_labels is None:
        note = "the corpus has no labels"
    elif "label" not in d.columns:
        note = "the downstream set has no true labels"
    else:
        regions, given_share, other_share = find_bias_regions(cfg, pre_labels, graph.rows, inp.emb,
                                                              inp.down.embeddings,
                                                              np.array(d["label"].to_list(), dtype=object))
    cluster = _clusters(inp.run, inp.flags)
    regions = merge_regions(regions, cluster)
    if pre_labels is not None:
        regions = trim_regions(regions, graph.rows, pre_labels, cfg.bias_core, cfg.bias_min_rows)
        regions = self_agreeing(regions, graph.rows, pre_labels, cfg.bias_self_agreement)
    return _Bias(regions, given_share, other_share, note, region_of_rows(regions, n), cluster, graph)


def _clusters(run: RunDir, flags: pl.DataFrame) -> np.ndarray:
    """Each pre-training row's k-means cluster: ``long_tail``'s ``cluster_id``, else the scan's k-means."""
    if "cluster_id" in flags.columns:
        return flags["cluster_id"].fill_null(-1).to_numpy().astype(np.int64)
    from uimdata.context import ScanContext

    return ScanContext(run).cluster_ids


def _flag_matrix(flags: pl.DataFrame, bias: _Bias) -> dict[str, np.ndarray]:
    """Issue -> which pre-training rows it flags: the scan's issues, and the bias regions' rows (if any)."""
    flag_mat = {i: flags[is_col(i)].fill_null(False).to_numpy() for i in flag_issues(flags.columns)}
    if bias.regions:
        flag_mat[Bias.issue] = bias.region_of >= 0
    return flag_mat


def _slices(cfg: LinkConfig, inp: _Inputs, bias: _Bias, flag_mat: dict[str, np.ndarray], nbr: np.ndarray,
            weights: np.ndarray, error: np.ndarray, binary: bool, overall: float
            ) -> tuple[pl.DataFrame, list[Slice], np.ndarray, np.ndarray]:
    """The ranked, described slices table, the slice definitions, and per downstream row its cluster and
    bias region (-1 = none)."""
    from uimdata.groups import pre_slices

    n = inp.samples.num_rows
    down_cluster = weighted_vote(neighbour_values(nbr, bias.cluster), weights)
    members = cluster_members(bias.cluster)
    defs = cluster_slices(members, down_cluster)
    for col in inp.pre_cols:
        defs += pre_slices(col, inp.samples, inp.meta, nbr, weights)
    for col in (c for c in cfg.slice_cols if c not in inp.pre_cols):
        defs += column_slices(col, inp.down.frame[f"slice_{col}"].to_numpy(), nbr)
    bias_defs, down_region = region_slices(bias.regions, nbr, weights, n)
    defs += bias_defs
    corpus_rate = {i: float(v.mean()) for i, v in flag_mat.items()}
    density = neighbour_mean(bias.graph.rows, bias.graph.cos, empty=1.0)  # mean cosine to the kNN neighbours
    recs = slice_records(defs, error, flag_mat, corpus_rate, density, binary)
    carriers = bias_carriers(bias.regions, bias.cluster, members)
    slices = rank_slices(recs, binary, overall, carriers, {sid for sid, *_ in bias_defs}, cfg.min_down)
    slices = describe_slices(slices, {sid: prows for sid, *_, prows in defs},
                             inp.samples.column("text").to_pylist(), inp.emb, cfg.describe_top)
    return slices, defs, down_cluster, down_region


def _downstream_table(d: pl.DataFrame, ids: list[str], down_cluster: np.ndarray, down_region: np.ndarray,
                      nbr: np.ndarray, cos: np.ndarray, shares: dict[str, np.ndarray]) -> pl.DataFrame:
    """The downstream rows with their cluster, bias-region slice, neighbours and flagged shares."""
    id_arr = np.array(ids, dtype=object)
    return d.with_columns(
        pl.Series("cluster_id", down_cluster),
        pl.Series(Bias.SLICE, [Bias.slice_id(i) if i >= 0 else None for i in down_region], pl.Utf8),
        pl.Series("neighbor_ids", [id_arr[r].tolist() for r in nbr], pl.List(pl.Utf8)),
        pl.Series("neighbor_cosines", cos.tolist(), pl.List(pl.Float32)),
        *[pl.Series(f"share_{i}", v) for i, v in shares.items()],
    )


def _slice_rows(defs: list[Slice], ids: list[str]) -> pl.DataFrame:
    """The long table slice -> pre-training row id."""
    return pl.DataFrame({
        "slice_id": [sid for sid, *_, prows in defs for _ in range(len(prows))],
        "id": [ids[j] for *_, prows in defs for j in prows],
    }, schema={"slice_id": pl.Utf8, "id": pl.Utf8})


def _write(cfg: LinkConfig, inp: _Inputs, bias: _Bias, tables: dict[str, pl.DataFrame], info: dict[str, Any],
           timings: dict[str, float], t0: float) -> None:
    """Write the bias flags (unless skipped) and ``link.json`` (each atomically), then publish the tables
    into ``uim.duckdb``."""
    from uimdata import __version__
    from uimdata.store import publish, read_detectors

    run = inp.run
    flags = inp.flags
    if not bias.note:
        bias_table = bias_flags(inp.samples.column("id").to_pylist(), bias.regions, bias.region_of,
                                bias.given_share, bias.other_share)
        atomic_write_parquet(bias_table.to_arrow(), run.detector(Bias.issue))
        flags = flags.join(bias_table, on="id", how="left", maintain_order="left")
    atomic_write_parquet(flags.to_arrow(), run.flags)
    det_summary = {"skipped": bias.note} if bias.note else {
        "regions": [{"given": r.given, "suggested": r.suggested, "rows": len(r.rows), "support": r.support,
                     "given_in_support": r.given_in_support, "expected_rate": r.expected_rate,
                     "p_value": r.p_value} for r in bias.regions],
        "downstream": cfg.downstream}
    det_rows = [r for r in read_detectors(run) if r["issue"] != Bias.issue]
    det_rows.append({"issue": Bias.issue, "description": Bias.description, "summary": det_summary})
    timings["total"] = time.perf_counter() - t0
    atomic_write_text(json.dumps({"uimdata": __version__, "config": asdict(cfg), **info,
                                  "timings": timings}, indent=2, default=str), run.path / "link.json")
    publish(run, tables, detectors=det_rows)
