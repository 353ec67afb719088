"""link: tie a downstream model's errors to the regions and issues of the pre-training corpus.

``uim link RUN DOWNSTREAM`` embeds a downstream evaluation set into the run's space (the run's model,
or the set's own ``embedding`` column) and finds each downstream row's ``k`` nearest pre-training rows.
From there:

* **slices**: regions of the joint space: the run's k-means clusters (``long_tail``'s ``cluster_id``;
  a downstream row belongs to the cluster most of its neighbours are in), every value of a downstream
  column named with ``--slice-col``, and each inherited-label-bias region (below). Per slice: downstream
  rows, errors, the error rate with a Wilson 95 % interval, its lift over the overall error rate,
  pre-training rows, their density and the fraction flagged by each detector. Slices are ranked by
  the lower bound of the lift's 95 % interval (``score``): a slice of 3 rows with 3 errors has a
  low lower bound and cannot outrank a large slice whose excess error is certain. Slices with fewer
  than ``min_down`` downstream rows are listed but not ranked.
* **issue_attribution**: one logistic regression of a downstream row's error on the share of its ``k``
  pre-training neighbours flagged by each issue; odds ratio per +10 points of share with a 95 %
  interval and p-value (statsmodels).
* **inherited label bias** (when the downstream set has true labels): for each pre-training row, the
  true labels of its nearest downstream rows. A row whose given label ``g`` is nearly absent there and
  another label ``L`` dominates is a candidate; candidates with the same ``(g, L)`` that are linked in
  the pre-training kNN graph form a region. A region is flagged when its downstream rows carry ``g``
  far less often than downstream rows next to ``g``-labelled rows do elsewhere (one-sided binomial
  test, Bonferroni-corrected). Confident learning misses such regions when most of them are mislabelled
  the same way; the downstream truth does not. Its rows get ``is_inherited_label_bias_issue`` in
  ``flags`` with ``inherited_label_bias_suggested_label`` = ``L``.

Everything is computed in memory first, then written (each file atomically) and ``uim.duckdb`` rebuilt:
a failed link leaves the run as it was. Re-running replaces the previous link's tables.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from uimdata.downstream import label_overlap, read_downstream
from uimdata.label_model import cosine_weights
from uimdata.rundir import RunDir, atomic_write_parquet, atomic_write_text

ISSUE = "inherited_label_bias"
Z95 = 1.959963984540054


@dataclass
class LinkConfig:
    run: str
    downstream: str
    k: int = 10
    text_col: str | None = None
    label_col: str | None = None
    prediction_col: str | None = None
    correct_col: str | None = None
    loss_col: str | None = None
    id_col: str | None = None
    embedding_col: str | None = None
    slice_cols: tuple[str, ...] = ()
    #: downstream rows a slice needs to be ranked
    min_down: int = 10
    #: inherited label bias: the given label's share of nearby downstream truth at most this ...
    bias_given_max: float = 0.2
    #: ... and another label's share at least this
    bias_other_min: float = 0.5
    #: nearest downstream rows each pre-training row looks at
    bias_k: int = 10
    #: smallest flagged region (pre-training rows) and its smallest downstream support
    bias_min_rows: int = 8
    #: candidates join a region through a direct kNN edge (1) or one shared neighbour (2)
    bias_hops: int = 1
    bias_min_support: int = 8
    #: the given label's share in the region's downstream support must be at most this x its usual share
    bias_effect: float = 0.25
    #: a region keeps the rows whose pre-training neighbours mostly (at least this share) belong to the
    #: region or carry its downstream label; rows that only sit next to it are let go (0 = keep all)
    bias_core: float = 0.5
    #: a region is systematic when the corpus agrees with itself there: at least this share of its rows'
    #: kNN-graph neighbours carry the given label (a mixed area is the label detector's business)
    bias_self_agreement: float = 0.5
    alpha: float = 0.05
    device: str = "auto"
    cache_dir: str | None = None
    encoding_errors: str = "strict"
    #: slices described (terms, examples) in rank order
    describe_top: int = 50


@dataclass
class LinkResult:
    run: RunDir
    slices: pl.DataFrame
    attribution: pl.DataFrame
    n_down: int
    error_rate: float
    outcome: str
    bias_regions: int
    timings: dict[str, float] = field(default_factory=dict)
    #: things the user should know (e.g. downstream labels the corpus does not have)
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- statistics

def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (statsmodels; ``n`` = 0 gives [0, 1])."""
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    k, n = np.asarray(k, float), np.asarray(n, float)
    some = n > 0
    lo, hi = np.zeros(k.shape), np.ones(k.shape)
    if some.any():
        a, b = proportion_confint(k[some], n[some], alpha=2 * norm.sf(z), method="wilson")
        lo[some], hi[some] = np.clip(a, 0, 1), np.clip(b, 0, 1)
    return lo, hi


def mean_interval(values: list[np.ndarray], z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Normal interval of a mean (continuous outcomes, e.g. a loss)."""
    lo, hi = [], []
    for v in values:
        if len(v) == 0:
            lo.append(np.nan)
            hi.append(np.nan)
            continue
        half = z * (v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else np.inf)
        lo.append(v.mean() - half)
        hi.append(v.mean() + half)
    return np.array(lo), np.array(hi)


def binom_sf_ge(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, p))


def binom_sf_le(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return float(binom.cdf(k, n, p))


# ----------------------------------------------------------------------------------------- bias regions

@dataclass
class BiasRegion:
    rows: np.ndarray        # pre-training rows
    given: str
    suggested: str
    support: int            # downstream rows next to the region
    given_in_support: int   # of which carry the given label
    expected_rate: float    # how often downstream rows next to `given` rows carry `given` elsewhere
    p_value: float


def find_bias_regions(cfg: LinkConfig, pre_labels: np.ndarray, graph_rows: np.ndarray, emb: np.ndarray,
                      down_emb: np.ndarray, down_labels: np.ndarray
                      ) -> tuple[list[BiasRegion], np.ndarray, np.ndarray]:
    """Pre-training regions whose labels systematically disagree with the downstream truth.

    ``pre_labels``/``down_labels``: object arrays of strings (None = unknown). Returns the regions and,
    per pre-training row, the share of its given label and of the most frequent other label among its
    nearest downstream truth (NaN without)."""
    from scipy.sparse import coo_matrix, csr_matrix
    from scipy.sparse.csgraph import connected_components

    from uimdata.stages.index import cross_search

    n = len(pre_labels)
    has = np.array([v is not None for v in down_labels])
    given_share, other_share = np.full(n, np.nan), np.full(n, np.nan)
    if has.sum() < cfg.bias_min_support:
        return [], given_share, other_share
    dl = down_labels[has]
    classes = sorted({v for v in dl} | {v for v in pre_labels if v is not None})
    cidx = {c: i for i, c in enumerate(classes)}
    dy = np.array([cidx[v] for v in dl])
    py = np.array([cidx[v] if v is not None else -1 for v in pre_labels])
    nbr, cos = cross_search(down_emb[has], emb, cfg.bias_k)
    kd = nbr.shape[1]
    w = cosine_weights(cos)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    votes = np.zeros((n, len(classes)))
    np.add.at(votes, (np.repeat(np.arange(n), kd), dy[nbr].reshape(-1)), w.reshape(-1))
    labelled = py >= 0
    given_share[labelled] = votes[labelled, py[labelled]]
    masked = votes.copy()
    masked[labelled, py[labelled]] = -1
    other = masked.argmax(axis=1)
    other_share = masked[np.arange(n), other]
    cand = labelled & (given_share <= cfg.bias_given_max) & (masked[np.arange(n), other] >= cfg.bias_other_min)
    # how often a downstream row next to a row labelled c carries c: the null rate per class
    nearest = dy[nbr[:, 0]]
    same = nearest == py
    # (elsewhere: candidates left out, so a concept larger than the rest of its wrong class cannot pull
    # that class's rate down to its own)
    ref = labelled & ~cand
    ref = np.where(np.bincount(py[ref], minlength=len(classes))[np.clip(py, 0, None)] > 0, ref, labelled)
    base_rate = np.bincount(py[ref], weights=same[ref], minlength=len(classes)) / np.maximum(
        np.bincount(py[ref], minlength=len(classes)), 1)
    # candidates with the same (given, suggested) linked in the kNN graph: directly, or (bias_hops = 2)
    # through one shared neighbour, so that a region the graph splits into fragments stays one region
    key = np.where(cand, py * len(classes) + other, -1)
    cidx_rows = np.flatnonzero(cand)
    if len(cidx_rows) == 0:
        return [], given_share, other_share
    k_g = graph_rows.shape[1]
    nb = graph_rows[cidx_rows]
    cols = np.concatenate([cidx_rows[:, None], nb], axis=1) if cfg.bias_hops >= 2 else \
        np.concatenate([cidx_rows[:, None], np.where(cand[np.clip(nb, 0, None)], nb, -1)], axis=1)
    ok = cols >= 0
    b = csr_matrix((np.ones(ok.sum()), (np.repeat(np.arange(len(cidx_rows)), k_g + 1)[ok.reshape(-1)],
                                        cols[ok])), shape=(len(cidx_rows), n))
    if cfg.bias_hops < 2:  # direct edges only: a candidate links to its candidate neighbours
        b = b[:, cidx_rows]
        pairs = (b + b.T).tocoo()
    else:
        pairs = (b @ b.T).tocoo()  # candidates sharing a neighbour (or neighbours of each other)
    same = key[cidx_rows[pairs.row]] == key[cidx_rows[pairs.col]]
    adj = coo_matrix((np.ones(same.sum()), (pairs.row[same], pairs.col[same])),
                     shape=(len(cidx_rows), len(cidx_rows)))
    _, sub = connected_components(adj, directed=False)
    comp = np.full(n, -1, np.int64)
    comp[cidx_rows] = sub
    comp = np.where(cand, comp, -1)
    ids, sizes = np.unique(comp[comp >= 0], return_counts=True)
    big = ids[sizes >= cfg.bias_min_rows]
    regions = []
    for c in big:
        rows = np.flatnonzero(comp == c)
        support = np.unique(nbr[rows, : max(1, kd // 2)])
        g = int(py[rows[0]])
        k_given = int((dy[support] == g).sum())
        if len(support) < cfg.bias_min_support:
            continue
        if k_given > cfg.bias_effect * base_rate[g] * len(support):
            continue  # not far enough below the usual agreement to call it systematic
        p = binom_sf_le(k_given, len(support), float(base_rate[g]))
        regions.append(BiasRegion(rows, classes[g], classes[int(other[rows[0]])], len(support), k_given,
                                  float(base_rate[g]), p))
    m = max(len(regions), 1)
    regions = [r for r in regions if r.p_value * m <= cfg.alpha]
    return regions, given_share, other_share


def trim_regions(regions: list[BiasRegion], graph_rows: np.ndarray, pre_labels: np.ndarray, min_share: float,
                 min_rows: int) -> list[BiasRegion]:
    """Keep a region's core: the rows at least ``min_share`` of whose kNN-graph neighbours are in the region
    or carry its suggested (downstream) label. A row labelled like the region whose neighbours are mostly
    outside it only sits next to the concept: its own label is most likely right. Regions left with fewer
    than ``min_rows`` rows are dropped; the support and p-value stay those of the whole region."""
    if min_share <= 0 or not regions or graph_rows.shape[1] == 0:
        return regions
    out = []
    for r in regions:
        member = np.zeros(len(pre_labels), bool)
        member[r.rows] = True
        nb = graph_rows[r.rows]
        valid = nb >= 0
        safe = np.clip(nb, 0, None)
        agree = valid & (member[safe] | (pre_labels[safe] == r.suggested))
        share = agree.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        keep = r.rows[share >= min_share]
        if len(keep) >= min_rows:
            r.rows = keep
            out.append(r)
    return out


def self_agreeing(regions: list[BiasRegion], graph_rows: np.ndarray, pre_labels: np.ndarray,
                  min_share: float) -> list[BiasRegion]:
    """Regions where the corpus agrees with itself: on average at least ``min_share`` of a region row's
    kNN-graph neighbours carry the region's given label. Where the given label is a minority around its
    own rows, labels are mixed rather than systematically wrong (the ``label`` detector's business)."""
    if min_share <= 0 or graph_rows.shape[1] == 0:
        return regions
    out = []
    for r in regions:
        nb = graph_rows[r.rows]
        valid = nb >= 0
        same = valid & (pre_labels[np.clip(nb, 0, None)] == r.given)
        if float((same.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)).mean()) >= min_share:
            out.append(r)
    return out


def merge_regions(regions: list[BiasRegion], cluster: np.ndarray) -> list[BiasRegion]:
    """One region per concept: significant regions with the same (given, suggested) labels that share
    a k-means cluster are one mislabelled concept the kNN graph split; they are merged (support counts
    added, the test repeated on the sums)."""
    merged: list[BiasRegion] = []
    for r in sorted(regions, key=lambda r: -len(r.rows)):
        cl = set(np.unique(cluster[r.rows]).tolist()) - {-1}
        for m in merged:
            if (m.given, m.suggested) == (r.given, r.suggested) and cl & set(np.unique(cluster[m.rows]).tolist()):
                m.rows = np.union1d(m.rows, r.rows)
                m.support += r.support
                m.given_in_support += r.given_in_support
                m.p_value = binom_sf_le(m.given_in_support, m.support, m.expected_rate)
                break
        else:
            merged.append(r)
    return merged


# ----------------------------------------------------------------------------------------- attribution

def issue_attribution(error: np.ndarray, shares: dict[str, np.ndarray], binary: bool,
                      min_rows: int = 20) -> pl.DataFrame:
    """Logistic regression (statsmodels) of the error on each issue's share of flagged neighbours;
    odds ratios per +10 points of share. Issues with fewer than ``min_rows`` downstream rows next to a
    flagged row are listed without a fit."""
    import statsmodels.api as sm

    ok = ~np.isnan(error)
    y = error[ok]
    if not binary:  # a loss: "high loss" = the worst quarter
        y = (y >= np.quantile(y, 0.75)).astype(float)
    # an issue enters the model when enough rows have flagged neighbours to estimate its effect
    names = [k for k, v in shares.items() if (v[ok] > 0).sum() >= min_rows and np.nanstd(v[ok]) > 0]
    rows = []
    fit = None
    if names and 0 < y.mean() < 1:
        x = sm.add_constant(np.column_stack([shares[k][ok] for k in names]), has_constant="add")
        for method in ("newton", "bfgs"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = sm.Logit(y, x).fit(disp=0, maxiter=200, method=method)
                if np.all(np.isfinite(fit.bse)):
                    break
            except Exception:  # noqa: BLE001 - separation / singular design: try the next solver
                fit = None
        if fit is not None and not np.all(np.isfinite(fit.bse)):
            fit = None
    for k, v in shares.items():
        share = v[ok]
        flagged_any = share > 0
        err_with = float(y[flagged_any].mean()) if flagged_any.any() else None
        err_without = float(y[~flagged_any].mean()) if (~flagged_any).any() else None
        row = {"issue": k, "mean_share": float(share.mean()), "rows_with_flagged_neighbours": int(flagged_any.sum()),
               "error_rate_with": err_with, "error_rate_without": err_without,
               "odds_ratio": None, "or_lo": None, "or_hi": None, "p_value": None, "significant": False}
        if fit is not None and k in names:
            j = names.index(k) + 1
            b, se = float(fit.params[j]), float(fit.bse[j])
            ors = np.exp(np.clip(0.1 * np.array([b, b - Z95 * se, b + Z95 * se]), -700, 700))
            row.update(odds_ratio=float(ors[0]), or_lo=float(ors[1]), or_hi=float(ors[2]),
                       p_value=float(fit.pvalues[j]))
            row["significant"] = bool(row["p_value"] < 0.05 and b > 0)
        rows.append(row)
    schema = {"issue": pl.Utf8, "mean_share": pl.Float64, "rows_with_flagged_neighbours": pl.Int64,
              "error_rate_with": pl.Float64, "error_rate_without": pl.Float64, "odds_ratio": pl.Float64,
              "or_lo": pl.Float64, "or_hi": pl.Float64, "p_value": pl.Float64, "significant": pl.Boolean}
    return pl.DataFrame(rows, schema=schema).sort("p_value", nulls_last=True)


# ----------------------------------------------------------------------------------------- descriptions

_TOKEN = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def describe(texts: list[str], members: list[np.ndarray], emb: np.ndarray, background: np.ndarray,
             n_terms: int = 5, n_examples: int = 3) -> list[tuple[list[str], list[str]]]:
    """Per slice: its most distinctive terms (smoothed log-odds of document frequency against a
    background sample, sklearn's English stop words removed) and its rows nearest the centroid."""
    from collections import Counter

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    def doc_terms(i: int) -> set[str]:
        return {t for t in _TOKEN.findall(texts[i].casefold()[:2000]) if t not in ENGLISH_STOP_WORDS}

    bg = Counter(t for i in background for t in doc_terms(int(i)))
    nb = max(len(background), 1)
    out = []
    for rows in members:
        if len(rows) == 0:
            out.append(([], []))
            continue
        sample = rows if len(rows) <= 2000 else np.random.default_rng(0).choice(rows, 2000, replace=False)
        fg = Counter(t for i in sample for t in doc_terms(int(i)))
        ns = len(sample)
        scored = [(math.log((c + 0.5) / (ns + 1)) - math.log((bg.get(t, 0) + 0.5) / (nb + 1)), t)
                  for t, c in fg.items() if c >= max(2, 0.05 * ns)]
        terms = [t for _, t in sorted(scored, reverse=True)[:n_terms]]
        centroid = emb[sample].mean(axis=0)
        near = sample[np.argsort(-(emb[sample] @ centroid))[:n_examples]]
        out.append((terms, [texts[int(i)][:300] for i in near]))
    return out


# ----------------------------------------------------------------------------------------- link

def _vote(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the value with the largest summed weight among its neighbours' values (-1 = none)."""
    out = np.full(len(values), -1, np.int64)
    for i in range(len(values)):
        v = values[i]
        ok = v >= 0
        if ok.any():
            out[i] = int(np.bincount(v[ok], weights=weights[i][ok]).argmax())
    return out


def link(cfg: LinkConfig) -> LinkResult:
    from uimdata import __version__
    from uimdata.stages.index import cross_search, read_graph
    from uimdata.store import build_db, read_detectors

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    run = RunDir(cfg.run)
    meta = run.read_meta()
    samples = run.read_samples()
    n = samples.num_rows
    flags = pl.read_parquet(run.require(run.flags, "scan"))
    if ISSUE in {c.removeprefix("is_").removesuffix("_issue") for c in flags.columns}:
        flags = flags.drop([c for c in flags.columns if c.startswith(("is_" + ISSUE, ISSUE))])
    emb = run.read_embeddings()
    from dataclasses import replace

    from uimdata.groups import pre_slice_cols, pre_slices

    pre_cols = pre_slice_cols(cfg.slice_cols, samples, meta, cfg.downstream)  # corpus columns (groups.py)
    down = read_downstream(replace(cfg, slice_cols=tuple(c for c in cfg.slice_cols if c not in pre_cols)), meta,
                           emb.shape[1])
    d = down.frame
    m = d.height
    warnings = (label_overlap(samples.column("label").to_pylist(), d["label"].to_list(), cfg.downstream,
                              refuse=False)
                if "label" in samples.column_names and "label" in d.columns else [])
    timings["read+embed"] = time.perf_counter() - t0

    t = time.perf_counter()
    nbr, cos = cross_search(emb, down.embeddings, cfg.k)
    timings["knn"] = time.perf_counter() - t
    k_eff = nbr.shape[1]
    weights = cosine_weights(cos)
    error = d["error"].to_numpy().astype(float)
    binary = down.outcome != "loss"
    overall = float(np.nanmean(error))

    # --- inherited label bias ---------------------------------------------------------------------
    t = time.perf_counter()
    pre_labels = (np.array(samples.column("label").to_pylist(), dtype=object)
                  if "label" in samples.column_names else None)
    regions: list[BiasRegion] = []
    given_share, other_share = np.full(n, np.nan), np.full(n, np.nan)
    bias_note = None
    graph = read_graph(run, n)
    if pre_labels is None:
        bias_note = "the corpus has no labels"
    elif "label" not in d.columns:
        bias_note = "the downstream set has no true labels"
    else:
        regions, given_share, other_share = find_bias_regions(cfg, pre_labels, graph.rows, emb, down.embeddings,
                                                 np.array(d["label"].to_list(), dtype=object))
    if "cluster_id" in flags.columns:
        cluster = flags["cluster_id"].fill_null(-1).to_numpy().astype(np.int64)
    else:
        from uimdata.context import ScanContext

        cluster = ScanContext(run).cluster_ids
    regions = merge_regions(regions, cluster)
    if pre_labels is not None:
        regions = trim_regions(regions, graph.rows, pre_labels, cfg.bias_core, cfg.bias_min_rows)
        regions = self_agreeing(regions, graph.rows, pre_labels, cfg.bias_self_agreement)
    region_of = np.full(n, -1, np.int64)
    for i, r in enumerate(regions):
        region_of[r.rows] = i
    timings["bias"] = time.perf_counter() - t

    # --- slices -----------------------------------------------------------------------------------
    t = time.perf_counter()
    down_cluster = _vote(cluster[nbr], weights)
    issues = [c.removeprefix("is_").removesuffix("_issue") for c in flags.columns
              if c.startswith("is_") and c.endswith("_issue")]
    flag_mat = {i: flags[f"is_{i}_issue"].fill_null(False).to_numpy() for i in issues}
    corpus_rate = {i: float(v.mean()) for i, v in flag_mat.items()}
    if regions:
        bias_flag = region_of >= 0
        flag_mat[ISSUE] = bias_flag
        corpus_rate[ISSUE] = float(bias_flag.mean())
    density = np.asarray(graph.cos.mean(axis=1)) if n > 1 else np.ones(n)

    slice_defs: list[tuple[str, str, str, np.ndarray, np.ndarray]] = []  # id, kind, key, down rows, pre rows
    order = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[order], np.unique(cluster))
    members = dict(zip(np.unique(cluster).tolist(), np.split(order, bounds[1:])))
    for c in sorted(set(members) | set(down_cluster[down_cluster >= 0].tolist())):
        if c < 0:
            continue
        slice_defs.append((f"cluster:{c}", "cluster", str(c), np.flatnonzero(down_cluster == c),
                           members.get(c, np.zeros(0, np.int64))))
    for col in pre_cols:
        slice_defs += pre_slices(col, samples, meta, nbr, weights)
    for col in (c for c in cfg.slice_cols if c not in pre_cols):
        vals = d[f"slice_{col}"].to_numpy()
        for v in sorted({x for x in vals if x is not None}):
            rows = np.flatnonzero(vals == v)
            slice_defs.append((f"{col}:{v}", col, str(v), rows, np.unique(nbr[rows])))
    down_region = np.full(m, -1, np.int64)
    for i, r in enumerate(regions):
        inside = np.isin(nbr, r.rows)
        share = (weights * inside).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
        rows = np.flatnonzero(share >= 0.5)
        down_region[rows] = i
        slice_defs.append((f"{ISSUE}:{i}", ISSUE, f"{r.given} -> {r.suggested}", rows, r.rows))

    recs = []
    for sid, kind, key, drows, prows in slice_defs:
        e = error[drows]
        e = e[~np.isnan(e)]
        rec = {"slice_id": sid, "kind": kind, "key": key, "n_down": len(drows), "n_err": None,
               "error_rate": float(e.mean()) if len(e) else None, "n_pre": len(prows),
               "density": float(density[prows].mean()) if len(prows) else None}
        if binary:
            rec["n_err"] = int(e.sum())
        for i, v in flag_mat.items():
            rec[f"frac_{i}"] = float(v[prows].mean()) if len(prows) else None
        # the dominant issue: the most enriched defect over its corpus-wide rate (long_tail is not a
        # defect), when the enrichment is at least 2x and significant (one-sided binomial, p < 0.001)
        rec["dominant_issue"], rec["dominant_enrichment"] = None, None
        best = 0.0
        for i in flag_mat:
            frac = rec[f"frac_{i}"] or 0.0
            if i == "long_tail" or frac == 0 or len(prows) == 0:
                continue
            enrich = frac / max(corpus_rate[i], 1e-9)
            k_flag = int(round(frac * len(prows)))
            if enrich >= 2 and enrich > best and binom_sf_ge(k_flag, len(prows), corpus_rate[i]) < 1e-3:
                best, rec["dominant_issue"], rec["dominant_enrichment"] = enrich, i, enrich
        recs.append((rec, e))
    if binary:
        lo, hi = wilson(np.array([r["n_err"] for r, _ in recs]), np.array([len(e) for _, e in recs]))
    else:
        lo, hi = mean_interval([e for _, e in recs])
    base = max(overall, 1e-12)
    rows_out = []
    region_slices = {f"{ISSUE}:{i}" for i in range(len(regions))}
    carriers = _bias_carriers(regions, cluster, members)
    for (rec, e), a, b in zip(recs, lo, hi):
        rec["lift"] = rec["error_rate"] / base if rec["error_rate"] is not None else None
        rec["lift_lo"], rec["lift_hi"] = float(a / base), float(b / base)
        rec["score"] = rec["lift_lo"]
        bias = carriers.get(rec["slice_id"])
        rec["inherited_label_bias"] = bias is not None
        rec["bias_given_label"], rec["bias_downstream_label"] = bias if bias else (None, None)
        # tiers: 0 = an inherited-label-bias region (downstream truth contradicts the corpus labels there),
        # 1 = error significantly above overall and explained by an enriched issue or a bias region inside,
        # 2 = the rest; ranked by (tier, score) among slices with >= min_down downstream rows
        if rec["slice_id"] in region_slices:
            rec["tier"] = 0
        elif rec["lift_lo"] > 1 and (rec["dominant_issue"] or bias):
            rec["tier"] = 1
        else:
            rec["tier"] = 2
        rec["rankable"] = len(e) >= cfg.min_down
        rows_out.append(rec)
    slices = pl.DataFrame(rows_out, infer_schema_length=None)
    slices = slices.sort(["rankable", "tier", "score"], descending=[True, False, True], nulls_last=True)
    slices = slices.with_columns(
        pl.when(pl.col("rankable")).then(pl.int_range(1, pl.len() + 1)).otherwise(None).cast(pl.Int64).alias("rank")
    ).drop("rankable")
    # descriptions of the ranked top slices
    texts = samples.column("text").to_pylist()
    pre_members = {sid: prows for sid, _, _, _, prows in slice_defs}
    top = slices.head(cfg.describe_top)["slice_id"].to_list()
    rng = np.random.default_rng(0)
    background = rng.choice(n, size=min(n, 20000), replace=False)
    desc = dict(zip(top, describe(texts, [pre_members[s] for s in top], emb, background)))
    slices = slices.with_columns(
        pl.Series("top_terms", [desc.get(s, ([], []))[0] for s in slices["slice_id"]], pl.List(pl.Utf8)),
        pl.Series("examples", [desc.get(s, ([], []))[1] for s in slices["slice_id"]], pl.List(pl.Utf8)),
    )
    slices = slices.with_columns(pl.Series("description", [
        _description(r) for r in slices.iter_rows(named=True)], pl.Utf8))
    timings["slices"] = time.perf_counter() - t

    # --- attribution ------------------------------------------------------------------------------
    t = time.perf_counter()
    shares = {i: (weights * v[nbr]).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
              for i, v in flag_mat.items()}
    attribution = issue_attribution(error, shares, binary)
    timings["attribution"] = time.perf_counter() - t

    # --- tables -----------------------------------------------------------------------------------
    ids = samples.column("id").to_pylist()
    id_arr = np.array(ids, dtype=object)
    downstream = d.with_columns(
        pl.Series("cluster_id", down_cluster),
        pl.Series(f"{ISSUE}_slice", [f"{ISSUE}:{i}" if i >= 0 else None for i in down_region], pl.Utf8),
        pl.Series("neighbor_ids", [id_arr[r].tolist() for r in nbr], pl.List(pl.Utf8)),
        pl.Series("neighbor_cosines", cos.tolist(), pl.List(pl.Float32)),
        *[pl.Series(f"share_{i}", v) for i, v in shares.items()],
    )
    slice_rows = pl.DataFrame({
        "slice_id": [sid for sid, *_, prows in slice_defs for _ in range(len(prows))],
        "id": [ids[j] for *_, prows in slice_defs for j in prows],
    }, schema={"slice_id": pl.Utf8, "id": pl.Utf8})
    # flags: the inherited-label-bias columns (every pre-training row)
    is_bias = region_of >= 0
    suggested = [regions[g].suggested if g >= 0 else None for g in region_of]
    reasons = []
    for j in range(n):
        g = region_of[j]
        if g < 0:
            reasons.append(None)
            continue
        r = regions[g]
        reasons.append(f"labelled '{r.given}' in a region where downstream truth says '{r.suggested}' "
                       f"({r.support - r.given_in_support} of {r.support} nearby downstream rows are not "
                       f"'{r.given}'; expected {r.expected_rate:.0%} '{r.given}')")
    score = np.where(np.isnan(given_share), 1.0, np.clip(given_share, 0, 1))
    bias_table = pl.DataFrame({
        "id": ids, f"is_{ISSUE}_issue": is_bias, f"{ISSUE}_score": np.where(is_bias, score, np.maximum(score, 0.5)),
        f"{ISSUE}_reason": pl.Series(reasons, dtype=pl.Utf8),
        f"{ISSUE}_suggested_label": pl.Series(suggested, dtype=pl.Utf8),
        # the suggested label's share of the row's nearest downstream truth (the evidence's strength)
        f"{ISSUE}_suggested_prob": pl.Series(np.where(is_bias, other_share, np.nan), dtype=pl.Float64)
        .fill_nan(None),
        f"{ISSUE}_slice": pl.Series([f"{ISSUE}:{g}" if g >= 0 else None for g in region_of], dtype=pl.Utf8),
    })
    new_flags = flags.join(bias_table, on="id", how="left", maintain_order="left")
    info = {"downstream": cfg.downstream, "rows": m, "outcome": down.outcome, "columns": down.columns,
            "error_rate": overall, "k": k_eff, "regions": len(regions), "note": bias_note}
    det_summary = {"regions": [{"given": r.given, "suggested": r.suggested, "rows": len(r.rows),
                                "support": r.support, "given_in_support": r.given_in_support,
                                "expected_rate": r.expected_rate, "p_value": r.p_value} for r in regions],
                   "downstream": cfg.downstream}
    if bias_note:
        det_summary = {"skipped": bias_note}

    # --- write (each file atomically), then rebuild the database ----------------------------------
    tables = run.path / "tables"
    atomic_write_parquet(downstream.to_arrow(), tables / "downstream.parquet")
    atomic_write_parquet(slices.to_arrow(), tables / "slices.parquet")
    atomic_write_parquet(slice_rows.to_arrow(), tables / "slice_rows.parquet")
    atomic_write_parquet(attribution.to_arrow(), tables / "issue_attribution.parquet")
    if not bias_note:
        atomic_write_parquet(bias_table.to_arrow(), run.detector(ISSUE))
    atomic_write_parquet((new_flags if not bias_note else flags).to_arrow(), run.flags)
    det_rows = [r for r in read_detectors(run) if r["issue"] != ISSUE]
    det_rows.append({"issue": ISSUE, "description": (
        "Pre-training rows in a region whose labels systematically disagree with the downstream truth "
        "(found by `uim link`); suggested label = the downstream label."), "summary": det_summary})
    timings["total"] = time.perf_counter() - t0
    atomic_write_text(json.dumps({"uimdata": __version__, "config": asdict(cfg), **info,
                                  "timings": timings}, indent=2, default=str), run.path / "link.json")
    build_db(run, det_rows)
    return LinkResult(run, slices, attribution, m, overall, down.outcome, len(regions), timings, warnings)


def _bias_carriers(regions: list[BiasRegion], cluster: np.ndarray,
                   members: dict[int, np.ndarray]) -> dict[str, tuple[str, str]]:
    """Slices that carry a bias region: the region's own slice, and each cluster holding at least half
    of the region or whose rows are at least half the region's."""
    out = {}
    for i, r in enumerate(regions):
        out[f"{ISSUE}:{i}"] = (r.given, r.suggested)
        cs, counts = np.unique(cluster[r.rows], return_counts=True)
        for c, cnt in zip(cs.tolist(), counts.tolist()):
            if cnt >= 0.5 * len(r.rows) or cnt >= 0.5 * len(members.get(c, [])):
                out.setdefault(f"cluster:{c}", (r.given, r.suggested))
    return out


def _description(r: dict[str, Any]) -> str:
    terms = ", ".join(r.get("top_terms") or [])
    head = f"{r['kind']} {r['key']}" if r["kind"] != "cluster" else f"cluster {r['key']}"
    bits = [head]
    if terms:
        bits.append(f"terms: {terms}")
    if r.get("inherited_label_bias"):
        bits.append(f"pre-training says '{r['bias_given_label']}', downstream says '{r['bias_downstream_label']}'")
    return "; ".join(bits)
