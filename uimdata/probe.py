"""probe: the closed loop. Train one light downstream model on the raw corpus and on each curated
variant, evaluate on a downstream set, and compare.

The model is a softmax regression on the run's embeddings (``uimdata.label_model.SoftmaxModel``,
L-BFGS, on the GPU when present), trained with the curated rows' labels and weights. Metrics on the
evaluation set, each with a 95 % interval: ``accuracy`` (Wilson), ``macro_accuracy`` (mean of per-class
accuracies; bootstrap), ``tail_accuracy`` (rows whose true class is a ``long_tail`` tail class; Wilson)
and ``slice_accuracy`` (rows inside the top ``top_slices`` slices of ``uim link``; Wilson).

The rows ``uim link`` saw (its ``downstream`` table) must not be the rows evaluated here: ``uim link``
may have relabelled pre-training rows from their labels, so evaluating on them would leak. ``probe``
refuses any overlap (by normalised-text hash, or embedding hash for embedding-only sets) unless
``allow_leak`` is set.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from uimdata.downstream import read_downstream
from uimdata.errors import UimError
from uimdata.label_model import cosine_weights
from uimdata.link import LinkConfig, wilson
from uimdata.rundir import RunDir, atomic_write_parquet
from uimdata.store import build_db, read_detectors

METRICS = ("accuracy", "macro_accuracy", "tail_accuracy", "slice_accuracy")


@dataclass
class ProbeResult:
    results: pl.DataFrame        # the probe_results table
    link_source: str | None
    eval_source: str
    n_eval: int
    overlap: int
    timings: dict[str, float] = field(default_factory=dict)


def fit_predict(x: np.ndarray, labels: list[str], weight: np.ndarray | None, x_eval: np.ndarray,
                device: str = "auto", max_iter: int = 300, l2: float = 1e-5) -> np.ndarray:
    """Train the probe on (x, labels, weight) and return its predicted class names for x_eval."""
    from uimdata.label_model import SoftmaxModel

    classes = sorted(set(labels))
    idx = {c: i for i, c in enumerate(classes)}
    y = np.array([idx[v] for v in labels])
    model = SoftmaxModel(len(classes), l2=l2, max_iter=max_iter, device=device).fit(x, y, weight)
    return np.array(classes, dtype=object)[model.predict_proba(x_eval).argmax(1)]


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, groups: dict[str, np.ndarray],
             n_boot: int = 200, seed: int = 0) -> dict[str, tuple[float | None, float | None, float | None, int]]:
    """metric -> (value, ci_lo, ci_hi, n)."""
    ok = (y_true == y_pred).astype(float)
    out: dict[str, tuple[float | None, float | None, float | None, int]] = {}
    lo, hi = wilson(np.array([ok.sum()]), np.array([len(ok)]))
    out["accuracy"] = (float(ok.mean()) if len(ok) else None, float(lo[0]), float(hi[0]), len(ok))
    classes, inv = np.unique(y_true.astype(str), return_inverse=True)

    def macro(sel: np.ndarray) -> float:
        per = np.bincount(inv[sel], weights=ok[sel], minlength=len(classes))
        cnt = np.bincount(inv[sel], minlength=len(classes))
        return float((per[cnt > 0] / cnt[cnt > 0]).mean())

    rng = np.random.default_rng(seed)
    boots = [macro(rng.integers(0, len(ok), len(ok))) for _ in range(n_boot)] if len(ok) else [np.nan]
    out["macro_accuracy"] = (macro(np.arange(len(ok))) if len(ok) else None,
                             float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)), len(ok))
    for name, mask in groups.items():
        k = ok[mask]
        lo, hi = wilson(np.array([k.sum()]), np.array([len(k)]))
        out[name] = (float(k.mean()) if len(k) else None, float(lo[0]) if len(k) else None,
                     float(hi[0]) if len(k) else None, int(len(k)))
    return out


def _tail_classes(run: RunDir) -> list[str]:
    for d in read_detectors(run):
        if d.get("issue") == "long_tail":
            return list(d.get("summary", {}).get("tail_classes") or [])
    return []


def _slice_rows(run: RunDir, top: int) -> tuple[set[str], list[str]]:
    """Pre-training ids of the top ``top`` ranked slices of ``uim link`` (empty without a link)."""
    path = run.path / "tables" / "slices.parquet"
    rows = run.path / "tables" / "slice_rows.parquet"
    if not path.exists() or not rows.exists():
        return set(), []
    ranked = pl.read_parquet(path).filter(pl.col("rank").is_not_null()).sort("rank").head(top)["slice_id"].to_list()
    ids = pl.read_parquet(rows).filter(pl.col("slice_id").is_in(ranked))["id"].to_list()
    return set(ids), ranked


def probe(run_path: str, downstream: str, policies: tuple[str, ...] = ("conservative", "default", "aggressive"),
          allow_leak: bool = False, label_col: str | None = None, text_col: str | None = None,
          embedding_col: str | None = None, top_slices: int = 5, k: int = 10, device: str = "auto",
          cache_dir: str | None = None, extra_variants: dict[str, pl.DataFrame] | None = None) -> ProbeResult:
    """``extra_variants``: name -> a manifest-like frame (``id``, ``action``, ``label``, ``weight``) to
    train on as well (benchmarks use it for Datalab's and an oracle's curation)."""
    from uimdata.curate import decide
    from uimdata.stages.index import cross_search

    t0 = time.perf_counter()
    run = RunDir(run_path)
    meta = run.read_meta()
    samples = pl.read_parquet(run.require(run.samples, "ingest"))
    if "label" not in samples.columns:
        raise UimError(f"run {run.path} has no labels", expected="a labelled corpus (probe trains a classifier)",
                       got="no label column", hint="scan with --label-col")
    emb = run.read_embeddings()
    cfg = LinkConfig(run=run_path, downstream=downstream, text_col=text_col, label_col=label_col,
                     embedding_col=embedding_col, device=device, cache_dir=cache_dir)
    down = read_downstream(cfg, meta, emb.shape[1], need_outcome=False)
    d = down.frame
    if "label" not in d.columns:
        raise UimError(f"{downstream}: no true label column", expected="a 'label' column to evaluate against",
                       got=", ".join(d.columns), hint="name it with --label-col")
    d_has = d["label"].is_not_null().to_numpy()
    # --- leak check -------------------------------------------------------------------------------
    link_path = run.path / "tables" / "downstream.parquet"
    link_meta = json.loads((run.path / "link.json").read_text()) if (run.path / "link.json").exists() else {}
    overlap = 0
    if link_path.exists():
        seen = set(pl.read_parquet(link_path, columns=["content_key"])["content_key"].to_list())
        overlap = int(d["content_key"].is_in(list(seen)).sum())
        if overlap and not allow_leak:
            raise UimError(f"{downstream}: {overlap} of its {d.height} rows were used by `uim link` "
                           f"({link_meta.get('downstream')})",
                           expected="an evaluation split disjoint from the split `uim link` relabelled from",
                           got=f"{overlap} shared rows",
                           hint="evaluate on a held-out split, or pass --allow-leak to do it anyway")
    y_true = np.array(d["label"].to_list(), dtype=object)[d_has]
    x_eval = down.embeddings[d_has]
    # --- groups ------------------------------------------------------------------------------------
    tail = set(_tail_classes(run))
    groups = {"tail_accuracy": np.isin(y_true.astype(str), list(tail))}
    slice_ids, ranked = _slice_rows(run, top_slices)
    if slice_ids:
        nbr, cos = cross_search(emb, x_eval, k)
        ids = np.array(samples["id"].to_list(), dtype=object)
        inside = np.isin(ids[nbr], list(slice_ids))
        w = cosine_weights(cos)
        groups["slice_accuracy"] = (w * inside).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12) >= 0.5
    # --- variants: each a manifest (id, action, label, optional weight) over the corpus rows ---------
    manifests = {"raw": samples.select("id", "label").with_columns(pl.lit("kept").alias("action"))}
    for name in policies:
        cur = decide(run, name)
        manifests[cur.policy_name] = cur.manifest.select("id", "action", "label", "weight")
    manifests.update(extra_variants or {})
    variants: dict[str, dict[str, Any]] = {}
    for name, m in manifests.items():
        m = samples.select("id").join(m, on="id", how="left", maintain_order="left")
        action = m["action"].fill_null("kept")
        counts = action.value_counts()
        variants[name] = {"keep": (action != "dropped").to_numpy() & m["label"].is_not_null().to_numpy(),
                          "labels": m["label"].to_list(),
                          "weight": m["weight"].fill_null(1.0).to_numpy() if "weight" in m.columns else None,
                          "counts": dict(zip(counts["action"].to_list(), counts["count"].to_list()))}
    recs = []
    timings: dict[str, float] = {}
    for name, v in variants.items():
        t = time.perf_counter()
        rows = np.flatnonzero(v["keep"])
        labels = [v["labels"][i] for i in rows]
        weight = None if v["weight"] is None else v["weight"][rows]
        pred = fit_predict(emb[rows], labels, weight, x_eval, device=device)
        for metric, (val, lo, hi, n) in evaluate(y_true, pred, groups).items():
            recs.append({"policy": name, "metric": metric, "value": val, "ci_lo": lo, "ci_hi": hi, "n_eval": n,
                         "n_train": len(rows), "rows_dropped": v["counts"].get("dropped", 0),
                         "rows_relabelled": v["counts"].get("relabelled", 0),
                         "rows_reweighted": v["counts"].get("reweighted", 0)})
        timings[name] = time.perf_counter() - t
    results = pl.DataFrame(recs, schema={
        "policy": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "ci_lo": pl.Float64, "ci_hi": pl.Float64,
        "n_eval": pl.Int64, "n_train": pl.Int64, "rows_dropped": pl.Int64, "rows_relabelled": pl.Int64,
        "rows_reweighted": pl.Int64})
    results = results.with_columns(pl.lit(str(link_meta.get("downstream"))).alias("linked_on"),
                                   pl.lit(downstream).alias("evaluated_on"),
                                   pl.lit(", ".join(ranked)).alias("slices"))
    atomic_write_parquet(results.to_arrow(), run.path / "tables" / "probe_results.parquet")
    build_db(run, read_detectors(run))
    timings["total"] = time.perf_counter() - t0
    return ProbeResult(results, link_meta.get("downstream"), downstream, int(d_has.sum()), overlap, timings)
