"""Benchmark of `uim link`, `uim curate` and `uim probe` on a real planted-defect corpus.

Corpus: `bench_link_data.link_corpus` (42,664 WordNet glosses with a poisoned concept, 8 % label noise,
3 % OOD rows, near and exact duplicates; a clean dev split for `uim link` and a clean test split for
evaluation, both with the raw-trained downstream model's predictions).

1. `uim link RUN dev`: is the top-ranked slice the poisoned concept? precision / recall of the top
   slice's flagged rows (and of every inherited-label-bias flag) against the planted rows.
2. `uim probe RUN test` for the built-in policies, next to the curation cleanlab Datalab's default
   flags give (drop its label issues, outliers and every near-duplicate set member but one) and an
   oracle that drops exactly the planted defects: accuracy, macro accuracy, tail accuracy, accuracy on
   the top link slices, and accuracy on the poisoned concept's test rows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_link_data import link_corpus


def datalab_curation(corpus: Path, run: Path) -> tuple[pl.DataFrame, float]:
    import pyarrow.parquet as pq
    from cleanlab import Datalab

    df = pl.read_parquet(corpus)
    samples = pl.read_parquet(run / "samples.parquet", columns=["id", "label"])
    emb = np.asarray(df["embedding"].to_list(), dtype=np.float32)
    pp = pq.read_table(run / "pred_probs.parquet")
    probs = np.asarray(pp.column("pred_probs").to_pylist(), dtype=np.float64)
    start = time.perf_counter()
    lab = Datalab(data={"text": df["text"].to_list(), "label": df["label"].to_list()}, label_name="label",
                  verbosity=0)
    lab.find_issues(features=emb, pred_probs=probs)
    seconds = time.perf_counter() - start
    drop = lab.get_issues("label")["is_label_issue"].to_numpy() | lab.get_issues("outlier")["is_outlier_issue"].to_numpy()
    near = lab.get_issues("near_duplicate")
    sets = near["near_duplicate_sets"].to_list()
    for i in np.flatnonzero(near["is_near_duplicate_issue"].to_numpy()):
        if any(int(j) < i for j in sets[i]):  # keep the earliest member of each set
            drop[i] = True
    m = samples.with_columns(pl.Series("action", np.where(drop, "dropped", "kept")), pl.lit(1.0).alias("weight"))
    return m, seconds


def oracle_curation(run: Path, truth: pl.DataFrame) -> pl.DataFrame:
    bad = truth.filter(pl.col("defect").is_in(["label_noise", "ood", "near_duplicate", "exact_duplicate"]))
    samples = pl.read_parquet(run / "samples.parquet", columns=["id", "label"])
    return samples.with_columns(pl.when(pl.col("id").is_in(bad["id"].implode())).then(pl.lit("dropped"))
                                .otherwise(pl.lit("kept")).alias("action"), pl.lit(1.0).alias("weight"))


def concept_accuracy(run: Path, test: Path, policies: list[str], variants: dict[str, pl.DataFrame]) -> dict:
    """Accuracy on the poisoned concept's test rows, per training variant (the probe model)."""
    from uimdata.curate import decide
    from uimdata.probe import fit_predict
    from uimdata.rundir import RunDir

    t = pl.read_parquet(test).filter(pl.col("concept"))
    x_eval = np.stack(t["embedding"].to_numpy())
    y = np.array(t["label"].to_list())
    rd = RunDir(run)
    emb = rd.read_embeddings()
    samples = pl.read_parquet(run / "samples.parquet", columns=["id", "label"])
    manifests = {"raw": samples.with_columns(pl.lit("kept").alias("action"), pl.lit(1.0).alias("weight"))}
    manifests.update({p: decide(rd, p).manifest for p in policies})
    manifests.update(variants)
    out = {}
    for name, m in manifests.items():
        m = samples.select("id").join(m.select("id", "action", "label", "weight"), on="id", maintain_order="left")
        keep = np.flatnonzero((m["action"] != "dropped").to_numpy() & m["label"].is_not_null().to_numpy())
        pred = fit_predict(emb[keep], [m["label"][int(i)] for i in keep], m["weight"].to_numpy()[keep], x_eval)
        out[name] = round(float((pred == y).mean()), 3)
    return {"n": len(y), "accuracy": out}


def run(run_scan) -> dict:  # noqa: ANN001 - bench.run_scan
    import duckdb

    from uimdata.evaluate import mislabelled_rows
    from uimdata.link import LinkConfig, link
    from uimdata.probe import probe

    paths = link_corpus()
    d = paths["corpus"].parent
    truth = pl.read_parquet(paths["truth"])
    concept = json.loads((d / "concept.json").read_text())
    out = d / "run"
    r = run_scan(paths["corpus"], out)
    res: dict = {"rows": r.get("rows"), "concept": concept, "scan_seconds": round(r["seconds"], 1)}
    start = time.perf_counter()
    lk = link(LinkConfig(run=str(out), downstream=str(paths["dev"])))
    res["link_seconds"] = round(time.perf_counter() - start, 1)
    planted = set(truth.filter(pl.col("kind") == "poisoned_concept")["id"].to_list())
    con = duckdb.connect(str(out / "uim.duckdb"), read_only=True)
    top = con.sql("SELECT slice_id, kind, n_down, error_rate, lift, bias_given_label, bias_downstream_label "
                  "FROM slices WHERE rank = 1").pl().to_dicts()[0]
    top_ids = set(con.sql("SELECT f.id FROM slices s JOIN slice_rows r USING (slice_id) JOIN flags f USING (id) "
                          "WHERE s.rank = 1 AND f.is_inherited_label_bias_issue").pl()["id"].to_list())
    all_ids = set(con.sql("SELECT id FROM flags WHERE is_inherited_label_bias_issue").pl()["id"].to_list())
    con.close()

    wrong = mislabelled_rows(truth)

    def pr(ids: set) -> dict:
        tp = len(ids & planted)
        return {"flagged": len(ids), "precision": round(tp / max(len(ids), 1), 3),
                "recall": round(tp / max(len(planted), 1), 3),
                # flags on any row whose label is wrong (copies of the concept's rows, label noise) count
                "precision_mislabelled": round(len(ids & wrong) / max(len(ids), 1), 3)}

    res["link"] = {"top_slice": top, "top_slice_flags": pr(top_ids), "all_bias_flags": pr(all_ids),
                   "regions": lk.bias_regions, "dev_error_rate": round(lk.error_rate, 4),
                   "attribution": lk.attribution.select("issue", "odds_ratio", "p_value", "significant").to_dicts()}
    print(json.dumps(res["link"], indent=1, default=str), flush=True)
    dl, dl_seconds = datalab_curation(paths["corpus"], out)
    oracle = oracle_curation(out, truth)
    start = time.perf_counter()
    pb = probe(str(out), str(paths["test"]), extra_variants={"datalab": dl, "oracle": oracle})
    res["probe_seconds"] = round(time.perf_counter() - start, 1)
    res["datalab_find_issues_seconds"] = round(dl_seconds, 1)
    table = pb.results.pivot(on="metric", index=["policy", "n_train", "rows_dropped", "rows_relabelled",
                                                  "rows_reweighted"], values="value")
    res["probe"] = table.to_dicts()
    res["probe_ci"] = pb.results.select("policy", "metric", "ci_lo", "ci_hi", "n_eval").to_dicts()
    res["concept_accuracy"] = concept_accuracy(out, paths["test"], ["conservative", "default", "aggressive"],
                                               {"datalab": dl, "oracle": oracle})
    print(json.dumps({k: res[k] for k in ("probe", "concept_accuracy")}, indent=1), flush=True)
    return res
