"""Inherited label bias: pre-training regions whose labels systematically disagree with the downstream
truth, and the flags columns of their rows.

Each pre-training row looks at the true labels of its nearest downstream rows (cosine-weighted). A row
whose given label ``g`` is nearly absent there while another label ``L`` dominates is a candidate;
candidates with the same ``(g, L)`` that are linked in the pre-training kNN graph form a region. A region
is flagged when its downstream rows carry ``g`` far less often than downstream rows next to ``g``-labelled
rows do elsewhere (one-sided binomial test, Bonferroni-corrected): :func:`find_bias_regions`. Then
:func:`merge_regions` joins the regions of one concept that the graph split, :func:`trim_regions` keeps
each region's core and :func:`self_agreeing` drops the regions where the corpus does not agree with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from uimdata.detectors.base import is_col, reason_col, score_col
from uimdata.detectors.inherited_label_bias import InheritedLabelBiasDetector as Bias
from uimdata.knn import class_votes, neighbour_values, vote_weights
from uimdata.link.config import LinkConfig
from uimdata.stats import binom_sf_le


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
    n = len(pre_labels)
    has = np.array([v is not None for v in down_labels])
    given_share, other_share = np.full(n, np.nan), np.full(n, np.nan)
    if has.sum() < cfg.bias_min_support:
        return [], given_share, other_share
    classes, py, dy = _label_codes(pre_labels, down_labels[has])
    nbr, votes = _downstream_votes(emb, down_emb[has], dy, len(classes), cfg.bias_k)
    labelled = py >= 0
    given_share[labelled] = votes[labelled, py[labelled]]
    masked = votes.copy()
    masked[labelled, py[labelled]] = -1
    other = masked.argmax(axis=1)
    other_share = masked[np.arange(n), other]
    cand = labelled & (given_share <= cfg.bias_given_max) & (other_share >= cfg.bias_other_min)
    # (elsewhere: candidates left out, so a concept larger than the rest of its wrong class cannot pull
    # that class's rate down to its own)
    base_rate = _agreement_rates(py, dy[nbr[:, 0]], labelled & ~cand, labelled, len(classes))
    if not cand.any():
        return [], given_share, other_share
    comp = _candidate_groups(cand, py * len(classes) + other, graph_rows, cfg.bias_hops)
    regions = _tested_regions(cfg, comp, py, other, dy, nbr, base_rate, classes)
    m = max(len(regions), 1)
    regions = [r for r in regions if r.p_value * m <= cfg.alpha]
    return regions, given_share, other_share


def _label_codes(pre_labels: np.ndarray, down_labels: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The classes of both sides, sorted, and each side's class codes (pre-training: -1 = unlabelled)."""
    classes = sorted({v for v in down_labels} | {v for v in pre_labels if v is not None})
    cidx = {c: i for i, c in enumerate(classes)}
    dy = np.array([cidx[v] for v in down_labels])
    py = np.array([cidx[v] if v is not None else -1 for v in pre_labels])
    return classes, py, dy


def _downstream_votes(emb: np.ndarray, down_emb: np.ndarray, dy: np.ndarray, n_classes: int,
                      k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pre-training row's ``k`` nearest downstream rows and their cosine-weighted vote per class
    (each row's votes sum to 1)."""
    from uimdata.stages.index import cross_search

    nbr, cos = cross_search(down_emb, emb, k)
    codes = neighbour_values(nbr, dy)
    return nbr, class_votes(codes, vote_weights(cos, codes >= 0), n_classes)


def _agreement_rates(py: np.ndarray, nearest: np.ndarray, ref: np.ndarray, labelled: np.ndarray,
                     n_classes: int) -> np.ndarray:
    """The null rate per class c: how often the downstream row nearest a pre-training row labelled c
    carries c, over the rows ``ref`` (all ``labelled`` rows for a class that has none in ``ref``)."""
    same = nearest == py
    ref = np.where(np.bincount(py[ref], minlength=n_classes)[np.clip(py, 0, None)] > 0, ref, labelled)
    return np.bincount(py[ref], weights=same[ref], minlength=n_classes) / np.maximum(
        np.bincount(py[ref], minlength=n_classes), 1)


def _candidate_groups(cand: np.ndarray, key: np.ndarray, graph_rows: np.ndarray, hops: int) -> np.ndarray:
    """Per row, its group among the candidates with the same ``key`` (given, suggested) that the kNN graph
    links: directly, or (``hops`` = 2) through one shared neighbour, so that a region the graph splits into
    fragments stays one region. -1 for rows that are not candidates."""
    from scipy.sparse import coo_matrix, csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(cand)
    key = np.where(cand, key, -1)
    cidx_rows = np.flatnonzero(cand)
    k_g = graph_rows.shape[1]
    nb = graph_rows[cidx_rows]
    cols = np.concatenate([cidx_rows[:, None], nb], axis=1) if hops >= 2 else \
        np.concatenate([cidx_rows[:, None], np.where(cand[np.clip(nb, 0, None)], nb, -1)], axis=1)
    ok = cols >= 0
    b = csr_matrix((np.ones(ok.sum()), (np.repeat(np.arange(len(cidx_rows)), k_g + 1)[ok.reshape(-1)],
                                        cols[ok])), shape=(len(cidx_rows), n))
    if hops < 2:  # direct edges only: a candidate links to its candidate neighbours
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
    return np.where(cand, comp, -1)


def _tested_regions(cfg: LinkConfig, comp: np.ndarray, py: np.ndarray, other: np.ndarray, dy: np.ndarray,
                    nbr: np.ndarray, base_rate: np.ndarray, classes: list[str]) -> list[BiasRegion]:
    """The candidate groups large enough, with enough downstream support, whose support carries the
    given label far enough below its usual rate; each with its one-sided binomial p-value."""
    ids, sizes = np.unique(comp[comp >= 0], return_counts=True)
    kd = nbr.shape[1]
    regions = []
    for c in ids[sizes >= cfg.bias_min_rows]:
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
    return regions


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


def region_of_rows(regions: list[BiasRegion], n: int) -> np.ndarray:
    """Per pre-training row, the index of its region (-1 = none)."""
    region_of = np.full(n, -1, np.int64)
    for i, r in enumerate(regions):
        region_of[r.rows] = i
    return region_of


def bias_flags(ids: list[str], regions: list[BiasRegion], region_of: np.ndarray, given_share: np.ndarray,
               other_share: np.ndarray) -> pl.DataFrame:
    """The ``inherited_label_bias`` columns of the flags (named by its detector), one row per pre-training row."""
    is_bias = region_of >= 0
    why = [f"labelled '{r.given}' in a region where downstream truth says '{r.suggested}' "
           f"({r.support - r.given_in_support} of {r.support} nearby downstream rows are not "
           f"'{r.given}'; expected {r.expected_rate:.0%} '{r.given}')" for r in regions]
    score = np.where(np.isnan(given_share), 1.0, np.clip(given_share, 0, 1))
    return pl.DataFrame({
        "id": ids, is_col(Bias.issue): is_bias,
        score_col(Bias.issue): np.where(is_bias, score, np.maximum(score, 0.5)),
        reason_col(Bias.issue): pl.Series([why[g] if g >= 0 else None for g in region_of], dtype=pl.Utf8),
        Bias.SUGGESTED_LABEL: pl.Series([regions[g].suggested if g >= 0 else None for g in region_of],
                                        dtype=pl.Utf8),
        # the suggested label's share of the row's nearest downstream truth (the evidence's strength)
        Bias.SUGGESTED_PROB: pl.Series(np.where(is_bias, other_share, np.nan), dtype=pl.Float64).fill_nan(None),
        Bias.SLICE: pl.Series([Bias.slice_id(g) if g >= 0 else None for g in region_of], dtype=pl.Utf8),
    })
