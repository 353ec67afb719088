"""probe: the closed loop. Train one light downstream model on the raw corpus and on each curated
variant, evaluate on a downstream set, and compare.

The model is a softmax regression on the run's embeddings (``uimdata.label_model.SoftmaxModel``,
L-BFGS, on the GPU when present), trained with the curated rows' labels and weights. Metrics on the
evaluation set, each with a 95 % interval: ``accuracy`` (Wilson), ``macro_accuracy`` (mean of per-class
accuracies; bootstrap), ``tail_accuracy`` (rows whose true class is a ``long_tail`` tail class; Wilson),
``tail10_accuracy`` (rows whose true class is one of the corpus's 10 rarest classes; Wilson) and
``slice_accuracy`` (rows inside the top ``top_slices`` slices of ``uim link``; Wilson).

Who was hurt: per class and variant, accuracy with a Wilson interval, the change against raw, and a
one-sided exact McNemar test on the same evaluation rows (raw right and curated wrong vs the reverse);
a class is ``hurt`` when that fall is significant after Benjamini-Hochberg over the variant's classes
(q < 0.05). Stored as the table ``probe_classes``; ``ProbeResult.hurt`` lists the hurt classes.

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

from uimdata.detectors.long_tail import LongTailDetector as LongTail
from uimdata.downstream import DownstreamSpec, label_overlap, read_downstream
from uimdata.errors import UimError
from uimdata.knn import cosine_weights, neighbour_share
from uimdata.rundir import RunDir
from uimdata.stats import bh_qvalues, mcnemar_worse, wilson
from uimdata.store import publish, read_detectors, table_path

#: the metrics ``probe`` reports, in the order `uim probe` and the report list them
METRICS = ("accuracy", "macro_accuracy", "tail_accuracy", "tail10_accuracy", "slice_accuracy")
#: the rarest classes of the corpus that ``tail10_accuracy`` covers
TAIL_N = 10
#: false-discovery rate of the "hurt classes" list
HURT_FDR = 0.05


@dataclass
class ProbeResult:
    results: pl.DataFrame        # the probe_results table
    link_source: str | None
    eval_source: str
    n_eval: int
    overlap: int
    timings: dict[str, float] = field(default_factory=dict)
    #: things the user should know (e.g. evaluation labels the corpus does not have)
    warnings: list[str] = field(default_factory=list)
    #: the probe_classes table: per variant and class, accuracy raw vs curated
    classes: pl.DataFrame | None = None
    #: variant -> classes whose accuracy fell significantly against raw
    hurt: dict[str, list[str]] = field(default_factory=dict)
    #: variant -> predicted class of each labelled evaluation row (in the evaluation set's order)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


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


def rarest_classes(labels: list, n: int = TAIL_N) -> list[str]:
    """The ``n`` classes with the fewest rows (ties: by name)."""
    vc = pl.Series("label", labels, dtype=pl.Utf8).drop_nulls().value_counts()
    return vc.sort(["count", "label"])["label"].head(n).to_list()


def class_table(y_true: np.ndarray, preds: dict[str, np.ndarray], train_counts: dict[str, dict[str, int]],
                tail: list[str], fdr: float = HURT_FDR) -> pl.DataFrame:
    """The probe_classes table: per variant and true class, accuracy [Wilson CI], raw accuracy, the change,
    the one-sided McNemar p-value of a fall against raw, its BH q-value and ``hurt`` (q < fdr and a fall)."""
    y = y_true.astype(str)
    classes = sorted(set(y.tolist()))
    raw_ok = preds["raw"] == y_true if "raw" in preds else None
    recs = []
    for name, pred in preds.items():
        ok = pred == y_true
        rows = []
        for c in classes:
            m = y == c
            k, n = int(ok[m].sum()), int(m.sum())
            lo, hi = wilson(np.array([k]), np.array([n]))
            raw_acc = float(raw_ok[m].mean()) if raw_ok is not None else None
            p = mcnemar_worse(raw_ok[m], ok[m]) if raw_ok is not None and name != "raw" else 1.0
            rows.append({"policy": name, "label": c, "n_eval": n, "n_train": int(train_counts[name].get(c, 0)),
                         "n_train_raw": int(train_counts.get("raw", {}).get(c, 0)), "correct": k,
                         "accuracy": k / n, "ci_lo": float(lo[0]), "ci_hi": float(hi[0]),
                         "raw_accuracy": raw_acc, "delta": None if raw_acc is None else k / n - raw_acc,
                         "p_value": p, "is_tail10": c in tail})
        q = bh_qvalues(np.array([r["p_value"] for r in rows]))
        for r, qv in zip(rows, q):
            r["q_value"] = float(qv)
            r["hurt"] = bool(name != "raw" and qv < fdr and (r["delta"] or 0) < 0)
        recs += rows
    schema = {"policy": pl.Utf8, "label": pl.Utf8, "n_eval": pl.Int64, "n_train": pl.Int64, "n_train_raw": pl.Int64,
              "correct": pl.Int64, "accuracy": pl.Float64, "ci_lo": pl.Float64, "ci_hi": pl.Float64,
              "raw_accuracy": pl.Float64, "delta": pl.Float64, "p_value": pl.Float64, "is_tail10": pl.Boolean,
              "q_value": pl.Float64, "hurt": pl.Boolean}
    return pl.DataFrame(recs, schema=schema)


def _tail_classes(run: RunDir) -> list[str]:
    for d in read_detectors(run):
        if d.get("issue") == LongTail.issue:
            return list(d.get("summary", {}).get("tail_classes") or [])
    return []


def _slice_rows(run: RunDir, top: int) -> tuple[set[str], list[str]]:
    """Pre-training ids of the top ``top`` ranked slices of ``uim link`` (empty without a link)."""
    path = table_path(run, "slices")
    rows = table_path(run, "slice_rows")
    if not path.exists() or not rows.exists():
        return set(), []
    ranked = pl.read_parquet(path).filter(pl.col("rank").is_not_null()).sort("rank").head(top)["slice_id"].to_list()
    ids = pl.read_parquet(rows).filter(pl.col("slice_id").is_in(ranked))["id"].to_list()
    return set(ids), ranked


@dataclass
class _EvalSet:
    """The labelled rows of the evaluation set: true labels and embeddings, plus what was read."""

    frame: pl.DataFrame          # every row read (content_key, label, ...)
    y_true: np.ndarray           # true label of each labelled row
    x_eval: np.ndarray           # embedding of each labelled row
    warnings: list[str]


def _labelled_corpus(run: RunDir) -> tuple[pl.DataFrame, np.ndarray]:
    """The run's samples (a labelled corpus, else an error) and its embedding matrix."""
    samples = pl.read_parquet(run.require(run.samples, "ingest"))
    if "label" not in samples.columns:
        raise UimError(f"run {run.path} has no labels", expected="a labelled corpus (probe trains a classifier)",
                       got="no label column", hint="scan with --label-col")
    return samples, run.read_embeddings()


def _read_eval(spec: DownstreamSpec, meta: dict[str, Any], dim: int, corpus_labels: list) -> _EvalSet:
    """The evaluation set, which must have true labels (the corpus's: else an error or a warning)."""
    down = read_downstream(spec, meta, dim, need_outcome=False)
    d = down.frame
    if "label" not in d.columns:
        raise UimError(f"{spec.downstream}: no true label column", expected="a 'label' column to evaluate against",
                       got=", ".join(d.columns), hint="name it with --label-col")
    has = d["label"].is_not_null().to_numpy()
    warnings = label_overlap(corpus_labels, d["label"].to_list(), spec.downstream, refuse=True)
    return _EvalSet(d, np.array(d["label"].to_list(), dtype=object)[has], down.embeddings[has], warnings)


def _check_leak(run: RunDir, d: pl.DataFrame, downstream: str, allow_leak: bool) -> tuple[int, dict[str, Any]]:
    """Rows of the evaluation set that ``uim link`` used (refused unless ``allow_leak``), and ``link.json``."""
    link_path = table_path(run, "downstream")
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
    return overlap, link_meta


def _groups(run: RunDir, samples: pl.DataFrame, emb: np.ndarray, ev: _EvalSet, top_slices: int,
            k: int) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """The evaluation rows each group metric covers (tail, tail10, slice), the ranked slices used and
    the corpus's rarest classes."""
    from uimdata.stages.index import cross_search

    y = ev.y_true.astype(str)
    groups = {"tail_accuracy": np.isin(y, list(set(_tail_classes(run))))}
    tail10 = rarest_classes(samples["label"].to_list())
    groups["tail10_accuracy"] = np.isin(y, tail10)
    slice_ids, ranked = _slice_rows(run, top_slices)
    if slice_ids:
        nbr, cos = cross_search(emb, ev.x_eval, k)
        in_slices = np.isin(np.array(samples["id"].to_list(), dtype=object), list(slice_ids))
        groups["slice_accuracy"] = neighbour_share(nbr, cosine_weights(cos), in_slices) >= 0.5
    return groups, ranked, tail10


def _variants(run: RunDir, samples: pl.DataFrame, policies: tuple[str, ...],
              extra: dict[str, pl.DataFrame] | None) -> dict[str, dict[str, Any]]:
    """Each training set: raw, each policy's curation and ``extra``, as the rows kept, their labels and
    weights and the action counts (from a manifest: id, action, label, optional weight)."""
    from uimdata.curate import decide

    manifests = {"raw": samples.select("id", "label").with_columns(pl.lit("kept").alias("action"))}
    for name in policies:
        cur = decide(run, name)
        manifests[cur.policy_name] = cur.manifest.select("id", "action", "label", "weight")
    manifests.update(extra or {})
    variants: dict[str, dict[str, Any]] = {}
    for name, m in manifests.items():
        m = samples.select("id").join(m, on="id", how="left", maintain_order="left")
        action = m["action"].fill_null("kept")
        counts = action.value_counts()
        variants[name] = {"keep": (action != "dropped").to_numpy() & m["label"].is_not_null().to_numpy(),
                          "labels": m["label"].to_list(),
                          "weight": m["weight"].fill_null(1.0).to_numpy() if "weight" in m.columns else None,
                          "counts": dict(zip(counts["action"].to_list(), counts["count"].to_list()))}
    return variants


@dataclass
class _Scores:
    """What training and evaluating every variant gave."""

    records: list[dict[str, Any]] = field(default_factory=list)   # rows of probe_results
    preds: dict[str, np.ndarray] = field(default_factory=dict)
    train_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _train_and_score(variants: dict[str, dict[str, Any]], emb: np.ndarray, ev: _EvalSet,
                     groups: dict[str, np.ndarray], device: str) -> _Scores:
    """Train the probe on each variant and score it on the evaluation set."""
    out = _Scores()
    for name, v in variants.items():
        t = time.perf_counter()
        rows = np.flatnonzero(v["keep"])
        labels = [v["labels"][i] for i in rows]
        weight = None if v["weight"] is None else v["weight"][rows]
        pred = fit_predict(emb[rows], labels, weight, ev.x_eval, device=device)
        out.preds[name] = pred
        cls, cnt = np.unique(np.array(labels, dtype=str), return_counts=True)
        out.train_counts[name] = dict(zip(cls.tolist(), cnt.tolist()))
        for metric, (val, lo, hi, n) in evaluate(ev.y_true, pred, groups).items():
            out.records.append({"policy": name, "metric": metric, "value": val, "ci_lo": lo, "ci_hi": hi,
                                "n_eval": n, "n_train": len(rows), "rows_dropped": v["counts"].get("dropped", 0),
                                "rows_relabelled": v["counts"].get("relabelled", 0),
                                "rows_reweighted": v["counts"].get("reweighted", 0)})
        out.timings[name] = time.perf_counter() - t
    return out


def _results_table(records: list[dict[str, Any]], linked_on: str, evaluated_on: str,
                   ranked: list[str]) -> pl.DataFrame:
    """The probe_results table."""
    results = pl.DataFrame(records, schema={
        "policy": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "ci_lo": pl.Float64, "ci_hi": pl.Float64,
        "n_eval": pl.Int64, "n_train": pl.Int64, "rows_dropped": pl.Int64, "rows_relabelled": pl.Int64,
        "rows_reweighted": pl.Int64})
    return results.with_columns(pl.lit(linked_on).alias("linked_on"), pl.lit(evaluated_on).alias("evaluated_on"),
                                pl.lit(", ".join(ranked)).alias("slices"))


def probe(run_path: str, downstream: str, policies: tuple[str, ...] = ("conservative", "default", "aggressive"),
          allow_leak: bool = False, label_col: str | None = None, text_col: str | None = None,
          embedding_col: str | None = None, top_slices: int = 5, k: int = 10, device: str = "auto",
          cache_dir: str | None = None, extra_variants: dict[str, pl.DataFrame] | None = None) -> ProbeResult:
    """Train the probe on the raw corpus and on each policy's curation, evaluate each on ``downstream``,
    and publish ``probe_results`` and ``probe_classes`` into the run.

    ``extra_variants``: name -> a manifest-like frame (``id``, ``action``, ``label``, ``weight``) to
    train on as well (benchmarks use it for Datalab's and an oracle's curation)."""
    t0 = time.perf_counter()
    run = RunDir(run_path)
    meta = run.read_meta()
    samples, emb = _labelled_corpus(run)
    spec = DownstreamSpec(downstream=downstream, text_col=text_col, label_col=label_col,
                          embedding_col=embedding_col, device=device, cache_dir=cache_dir)
    ev = _read_eval(spec, meta, emb.shape[1], samples["label"].to_list())
    overlap, link_meta = _check_leak(run, ev.frame, downstream, allow_leak)
    groups, ranked, tail10 = _groups(run, samples, emb, ev, top_slices, k)
    scores = _train_and_score(_variants(run, samples, policies, extra_variants), emb, ev, groups, device)
    results = _results_table(scores.records, str(link_meta.get("downstream")), downstream, ranked)
    classes = class_table(ev.y_true, scores.preds, scores.train_counts, tail10)
    hurt = {name: classes.filter((pl.col("policy") == name) & pl.col("hurt")).sort("delta")["label"].to_list()
            for name in scores.preds if name != "raw"}
    publish(run, {"probe_results": results, "probe_classes": classes})
    scores.timings["total"] = time.perf_counter() - t0
    return ProbeResult(results, link_meta.get("downstream"), downstream, len(ev.y_true), overlap, scores.timings,
                       ev.warnings, classes, hurt, scores.preds)
