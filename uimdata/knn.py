"""Arithmetic over each row's k nearest neighbours by cosine: how much a neighbour counts, and the votes,
shares and means over a row's neighbours.

Neighbour matrices are ``(rows, k)``, nearest first, as :class:`uimdata.stages.index.KnnGraph` and
``cross_search`` return them; a neighbour index of -1 is a missing neighbour, and every function here
leaves it out.
"""

from __future__ import annotations

import warnings

import numpy as np

#: how fast a neighbour's weight falls with its cosine (``cosine_weights``)
TEMPERATURE = 0.05


def cosine_weights(cos: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """How much a neighbour at cosine ``cos`` counts: exp((cos - 1) / temperature), 1 for an identical
    vector; shared by the kNN label vote and the links between downstream and pre-training rows."""
    return np.exp((cos - 1.0) / temperature)


def neighbour_values(rows: np.ndarray, values: np.ndarray, missing: int = -1) -> np.ndarray:
    """``values`` of each row's neighbours (``values[rows]``), ``missing`` for a missing neighbour."""
    return np.where(rows >= 0, values[np.clip(rows, 0, None)], missing)


def vote_weights(cos: np.ndarray, valid: np.ndarray | None = None,
                 temperature: float = TEMPERATURE) -> np.ndarray:
    """Each neighbour's share of its row's vote: cosine weights (0 where ``valid`` is False), each row
    scaled to sum to 1 (a row without a valid neighbour stays 0)."""
    w = cosine_weights(cos, temperature)
    if valid is not None:
        w = np.where(valid, w, 0.0)
    return w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)


def class_votes(codes: np.ndarray, weights: np.ndarray, n_classes: int,
                out: np.ndarray | None = None) -> np.ndarray:
    """Per row, the summed weight of its neighbours per class: ``codes[i, j]`` is neighbour j's class
    (< 0: none, no vote). Added to ``out`` when given (e.g. a prior), else to zeros."""
    n, k = codes.shape
    if out is None:
        out = np.zeros((n, n_classes))
    flat = codes.reshape(-1)
    voting = flat >= 0
    np.add.at(out, (np.repeat(np.arange(n), k)[voting], flat[voting]), weights.reshape(-1)[voting])
    return out


def weighted_vote(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the value with the largest summed weight among its neighbours' values (values < 0 do
    not vote; -1 = no vote)."""
    out = np.full(len(values), -1, np.int64)
    for i in range(len(values)):
        v = values[i]
        ok = v >= 0
        if ok.any():
            out[i] = int(np.bincount(v[ok], weights=weights[i][ok]).argmax())
    return out


def neighbour_share(rows: np.ndarray, weights: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Per row, the weighted share of its neighbours that are members (``member``: a boolean per
    neighbour index, i.e. per base row)."""
    valid = rows >= 0
    w = np.where(valid, weights, 0.0)
    inside = valid & member[np.clip(rows, 0, None)]
    return (w * inside).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)


def neighbour_mean(rows: np.ndarray, values: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Per row, the mean of ``values`` (one per neighbour, e.g. its cosine) over the neighbours that
    exist; ``empty`` for a row without any."""
    if rows.shape[1] == 0:
        return np.full(len(rows), empty)
    present = np.where(rows >= 0, values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row without neighbours: "mean of empty slice"
        mean = np.nanmean(present, axis=1)
    return np.nan_to_num(mean, nan=empty)
