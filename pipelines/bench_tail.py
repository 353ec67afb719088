"""Benchmark of tail-aware curation: `uim link` + `uim curate` + `uim probe` on two labelled real corpora.

Corpora: ``bench_tail_data.tail_corpus`` (``debian``: 22,000 short technical texts, 58 classes;
``wordnet``: 12,000 dictionary glosses, 45 classes), each with a planted poisoned concept, 8 % label
noise, other-language and other-domain rows, near and exact duplicates and corrupted rows in its
pre-training part, a dev split for ``uim link`` and a test split for evaluation only.

Per corpus, in one run:

1. ``uim scan`` (given embeddings), ``uim link RUN dev``: precision / recall of the inherited-label-bias
   flags against the poisoned rows;
2. ``uim probe RUN test`` on raw, each policy (``conservative``, ``default``, ``aggressive``), ``default``
   with the tail guard off, ``default`` without its weights, the curation Datalab's default flags give,
   and an oracle that drops exactly the planted defects: accuracy (Wilson interval), macro accuracy
   (bootstrap), accuracy on the 10 rarest classes (``tail10``), on the poisoned concept's test rows, the
   share of the raw-to-oracle gap closed, clean tail-10 rows dropped, and the classes each variant hurt.

``python -m pipelines.bench_tail [debian|wordnet ...]``; ``make bench`` runs it as part of
``pipelines/bench.py`` (``python -m pipelines.bench tail`` alone). Results: ``runs/bench/tail.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_loop import datalab_curation
from pipelines.bench_tail_data import OUT, SIZES, tail_corpus

DEFECTS = ("label_noise", "ood", "near_duplicate", "exact_duplicate", "corrupted")


def oracle(run: Path, truth: pl.DataFrame) -> pl.DataFrame:
    bad = truth.filter(pl.col("defect").is_in(list(DEFECTS)))["id"].implode()
    s = pl.read_parquet(run / "samples.parquet", columns=["id", "label"])
    return s.with_columns(pl.when(pl.col("id").is_in(bad)).then(pl.lit("dropped")).otherwise(pl.lit("kept"))
                          .alias("action"), pl.lit(1.0).alias("weight"))


def _wilson(ok: np.ndarray) -> list:
    from uimdata.stats import wilson

    if len(ok) == 0:
        return [None, None, None, 0]
    lo, hi = wilson(np.array([ok.sum()]), np.array([len(ok)]))
    return [round(float(ok.mean()), 4), round(float(lo[0]), 4), round(float(hi[0]), 4), int(len(ok))]


def bench_corpus(name: str, run_scan) -> dict:  # noqa: ANN001 - bench.run_scan
    import duckdb

    from uimdata.curate import decide
    from uimdata.evaluate import mislabelled_rows
    from uimdata.link import LinkConfig, link
    from uimdata.probe import probe, rarest_classes
    from uimdata.rundir import RunDir

    paths = tail_corpus(name)
    d = paths["corpus"].parent
    truth = pl.read_parquet(paths["truth"])
    concept = json.loads((d / "concept.json").read_text())
    out = d / "run"
    r = run_scan(paths["corpus"], out)
    res: dict = {"corpus": name, "rows": r.get("rows"), "concept": concept, "scan_seconds": round(r["seconds"], 1)}
    t = time.perf_counter()
    lk = link(LinkConfig(run=str(out), downstream=str(paths["dev"])))
    res["link_seconds"] = round(time.perf_counter() - t, 1)
    planted = set(truth.filter(pl.col("kind") == "poisoned_concept")["id"].to_list())
    con = duckdb.connect(str(out / "uim.duckdb"), read_only=True)
    flagged = set(con.sql("SELECT id FROM flags WHERE is_inherited_label_bias_issue").pl()["id"].to_list())
    con.close()
    tp = len(flagged & planted)
    res["link"] = {"regions": lk.bias_regions, "flagged": len(flagged), "planted": len(planted),
                   "precision": round(tp / max(len(flagged), 1), 3), "recall": round(tp / max(len(planted), 1), 3),
                   # flags on any row whose label is wrong (copies of the concept's rows, label noise) count
                   "precision_mislabelled": round(len(flagged & mislabelled_rows(truth)) / max(len(flagged), 1), 3),
                   "dev_error_rate": round(lk.error_rate, 4)}
    print(name, json.dumps(res["link"]), flush=True)

    rd = RunDir(out)
    samples = pl.read_parquet(out / "samples.parquet", columns=["id", "label"])
    dl, dl_seconds = datalab_curation(paths["corpus"], out)
    res["datalab_find_issues_seconds"] = round(dl_seconds, 1)
    off = d / "tail_off.toml"
    off.write_text('base = "default"\n[tail]\naction = "off"\n')
    unweighted = decide(rd, "default").manifest.with_columns(pl.lit(1.0).alias("weight"))
    extra = {"default, tail guard off": decide(rd, str(off)).manifest, "default, unweighted": unweighted,
             "datalab": dl, "oracle": oracle(out, truth)}
    t = time.perf_counter()
    pb = probe(str(out), str(paths["test"]), ("conservative", "default", "aggressive"), extra_variants=extra)
    res["probe_seconds"] = round(time.perf_counter() - t, 1)
    test = pl.read_parquet(paths["test"], columns=["label", "concept"])
    y = np.array(test["label"].to_list(), dtype=object)
    in_concept = test["concept"].to_numpy()
    tail10 = rarest_classes(samples["label"].to_list())
    in_tail = np.isin(y.astype(str), tail10)
    noise = set(truth.filter(pl.col("defect").is_in(list(DEFECTS)))["id"].to_list())
    clean_tail = samples.filter(pl.col("label").is_in(tail10) & ~pl.col("id").is_in(list(noise)))["id"]
    manifests = {"raw": None, "conservative": decide(rd, "conservative").manifest,
                 "default": decide(rd, "default").manifest, "aggressive": decide(rd, "aggressive").manifest, **extra}
    rows = []
    acc = {}
    for variant, pred in pb.predictions.items():
        ok = pred == y
        acc[variant] = float(ok.mean())
        m = manifests.get(variant)
        lost = 0
        if m is not None:
            mm = m.filter(pl.col("id").is_in(clean_tail.implode()))
            lost = int(((mm["action"] == "dropped") | (mm["label"] != mm["original_label"] if "original_label" in mm.columns
                                                        else pl.Series([False] * mm.height))).sum())
        sub = pb.results.filter(pl.col("policy") == variant)
        macro = sub.filter(pl.col("metric") == "macro_accuracy").row(0, named=True)
        rows.append({"variant": variant, "train_rows": int(sub["n_train"][0]), "dropped": int(sub["rows_dropped"][0]),
                     "relabelled": int(sub["rows_relabelled"][0]), "reweighted": int(sub["rows_reweighted"][0]),
                     "accuracy": _wilson(ok),
                     "macro": [round(macro["value"], 4), round(macro["ci_lo"], 4), round(macro["ci_hi"], 4)],
                     "tail10": _wilson(ok[in_tail]), "poisoned": _wilson(ok[in_concept]),
                     "clean_tail10_rows_lost": lost, "clean_tail10_rows": clean_tail.len(),
                     "hurt_classes": pb.hurt.get(variant, [])})
    gap = acc["oracle"] - acc["raw"]
    for r in rows:
        r["gap_closed"] = round((acc[r["variant"]] - acc["raw"]) / gap, 3) if gap > 0 else None
    res["tail10"] = tail10
    res["variants"] = rows
    for r in rows:
        print(f"{name:8s} {r['variant']:26s} acc {r['accuracy'][0]:.4f} gap {r['gap_closed']} macro {r['macro'][0]:.4f} "
              f"tail10 {r['tail10'][0]:.3f} (n={r['tail10'][3]}) poisoned {r['poisoned'][0]:.3f} "
              f"lost {r['clean_tail10_rows_lost']}/{r['clean_tail10_rows']} hurt {r['hurt_classes']}", flush=True)
    return res


def run(run_scan, names: list[str] | None = None) -> dict:  # noqa: ANN001
    out = {n: bench_corpus(n, run_scan) for n in names or list(SIZES)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tail.json").write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    from pipelines.bench_scan import run_scan

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"corpora, of {', '.join(SIZES)} (default: all)")
    run(run_scan, ap.parse_args().names or None)
