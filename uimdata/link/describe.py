"""Slice descriptions: a ranked slice's most distinctive terms, its representative texts and a one-line
description (``top_terms``, ``examples`` and ``description`` of the ``slices`` table)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import polars as pl

_TOKEN = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
#: rows of the background sample the terms are contrasted with
BACKGROUND_ROWS = 20000


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


def describe_slices(slices: pl.DataFrame, pre_members: dict[str, np.ndarray], texts: list[str],
                    emb: np.ndarray, top: int) -> pl.DataFrame:
    """``slices`` (in rank order) with ``top_terms`` and ``examples`` for its first ``top`` slices and a
    ``description`` for every slice. ``pre_members``: slice id -> its pre-training rows."""
    n = len(texts)
    ids = slices.head(top)["slice_id"].to_list()
    background = np.random.default_rng(0).choice(n, size=min(n, BACKGROUND_ROWS), replace=False)
    desc = dict(zip(ids, describe(texts, [pre_members[s] for s in ids], emb, background)))
    slices = slices.with_columns(
        pl.Series("top_terms", [desc.get(s, ([], []))[0] for s in slices["slice_id"]], pl.List(pl.Utf8)),
        pl.Series("examples", [desc.get(s, ([], []))[1] for s in slices["slice_id"]], pl.List(pl.Utf8)),
    )
    return slices.with_columns(pl.Series("description", [
        _description(r) for r in slices.iter_rows(named=True)], pl.Utf8))


def _description(r: dict[str, Any]) -> str:
    terms = ", ".join(r.get("top_terms") or [])
    head = f"{r['kind']} {r['key']}" if r["kind"] != "cluster" else f"cluster {r['key']}"
    bits = [head]
    if terms:
        bits.append(f"terms: {terms}")
    if r.get("inherited_label_bias"):
        bits.append(f"pre-training says '{r['bias_given_label']}', downstream says '{r['bias_downstream_label']}'")
    return "; ".join(bits)
