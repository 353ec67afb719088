"""Benchmark of the label / outlier / long_tail detectors against cleanlab Datalab (defaults).

Corpus: 50,000 real WordNet glosses (45 classes, long-tailed) with 8 % label noise planted (half
uniform, half towards the class' nearest classes by centroid: `uimdata.synth.labels`), plus
1.5 % other-language (German / Spanish / Italian fortunes) and 1.5 % other-domain (English jokes
and quotations) rows. Embedded once with all-MiniLM-L6-v2 through the cache, then scanned with
the precomputed `embedding` column. Datalab runs on the same embeddings and on uimdata's own
out-of-fold probabilities (pred_probs.parquet), in the same process, with its default issue types.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_data import GLOSSES, OUT, embed_cached

OOD = Path(__file__).resolve().parents[1] / "uimdata" / "data" / "ood" / "ood.parquet"


def detector_corpus(n: int = 50_000, noise: float = 0.08, ood_frac: float = 0.015,
                    seed: int = 0) -> tuple[Path, Path]:
    from uimdata.synth.labels import confusable_classes, plant_label_noise, plant_ood

    corpus, truth_path = OUT / f"labels{n}.parquet", OUT / f"labels_truth{n}.parquet"
    if corpus.exists() and truth_path.exists():
        return corpus, truth_path
    OUT.mkdir(parents=True, exist_ok=True)
    glosses = pl.read_parquet(GLOSSES, columns=["text", "label"])
    rng = np.random.default_rng(seed)
    order = rng.permutation(glosses.height)[:n]
    base = glosses[order.tolist()].with_row_index("id").with_columns(pl.col("id").cast(pl.Utf8))
    emb = embed_cached(base["text"].to_list())
    conf = confusable_classes(base["label"], emb, top=3)
    noisy, t1 = plant_label_noise(base, noise, rng, mode="mixed", confusable=conf)
    ood = pl.read_parquet(OOD)
    k = int(n * ood_frac)
    ood_pick = pl.concat([ood.filter(pl.col("kind") == "other_language").sample(k, seed=seed),
                          ood.filter(pl.col("kind") == "other_domain").sample(k, seed=seed)])
    df, t2 = plant_ood(noisy, ood_pick, 2 * k, rng)
    # fresh ids in a shuffled order: nothing about a row's id tells whether it was planted
    perm = rng.permutation(df.height)
    df = df[perm.tolist()]
    mapping = dict(zip(df["id"].to_list(), [f"d-{i:06d}" for i in range(df.height)]))
    df = df.with_columns(pl.col("id").replace_strict(mapping))
    truth = pl.concat([t1, t2], how="diagonal_relaxed").with_columns(pl.col("id").replace_strict(mapping))
    vecs = embed_cached(df["text"].to_list())
    df = df.with_columns(pl.Series("embedding", vecs, dtype=pl.Array(pl.Float32, vecs.shape[1])))
    df.write_parquet(corpus)
    truth.write_parquet(truth_path)
    return corpus, truth_path


def _prf(flagged: set, truth: set) -> dict:
    from uimdata.evaluate import set_prf

    return set_prf(flagged, truth).row()


def evaluate(flags: pl.DataFrame, truth: pl.DataFrame) -> dict:
    ood = set(truth.filter(pl.col("defect") == "ood")["id"])
    noisy = set(truth.filter(pl.col("defect") == "label_noise")["id"])
    lab = flags.filter(~pl.col("id").is_in(list(ood)))  # OOD rows carry meaningless labels: not scored
    out = {
        "label": _prf(set(lab.filter(pl.col("is_label_issue"))["id"]), noisy),
        "outlier": _prf(set(flags.filter(pl.col("is_outlier_issue"))["id"]), ood),
    }
    for kind in ("other_language", "other_domain"):
        ids = set(truth.filter(pl.col("kind") == kind)["id"])
        out[f"outlier_recall_{kind}"] = round(len(ids & set(flags.filter(pl.col("is_outlier_issue"))["id"]))
                                              / max(len(ids), 1), 4)
    return out


def label_models(run: Path, truth: pl.DataFrame) -> dict:
    """The label detector on each out-of-fold model: which one is best, measured."""
    from uimdata.context import ScanContext
    from uimdata.detectors.label import LabelDetector
    from uimdata.rundir import RunDir

    ood = set(truth.filter(pl.col("defect") == "ood")["id"])
    noisy = set(truth.filter(pl.col("defect") == "label_noise")["id"])
    res = {}
    for method in ("logreg", "knn", "ensemble"):
        ctx = ScanContext(RunDir(run), label_model=method)
        t = time.perf_counter()
        table = pl.from_arrow(LabelDetector().detect(ctx).table)
        res[method] = {"seconds": round(time.perf_counter() - t, 1),
                       **_prf(set(table.filter(pl.col("is_label_issue") & ~pl.col("id").is_in(list(ood)))["id"]),
                              noisy)}
    return res


def datalab(corpus: Path, run: Path, truth: pl.DataFrame) -> dict:
    import pyarrow.parquet as pq
    from cleanlab import Datalab

    df = pl.read_parquet(corpus)
    emb = np.asarray(df["embedding"].to_list(), dtype=np.float32)
    pp = pq.read_table(run / "pred_probs.parquet")
    classes = pp.schema.metadata[b"classes"].decode().split("\x1f")
    probs = np.asarray(pp.column("pred_probs").to_pylist(), dtype=np.float64)
    start = time.perf_counter()
    lab = Datalab(data={"text": df["text"].to_list(), "label": df["label"].to_list()}, label_name="label",
                  verbosity=0)
    assert [str(c) for c in lab.class_names] == classes, "class order differs"
    lab.find_issues(features=emb, pred_probs=probs)
    seconds = time.perf_counter() - start
    ids = np.array(df["id"].to_list())
    flags = pl.DataFrame({
        "id": ids,
        "is_label_issue": lab.get_issues("label")["is_label_issue"].to_numpy(),
        "is_outlier_issue": lab.get_issues("outlier")["is_outlier_issue"].to_numpy(),
    })
    return {"seconds": round(seconds, 1), **evaluate(flags, truth)}


def python_docstrings(n: int, seed: int = 0) -> list[str]:
    """English text of another domain that the OOD set does not hold: the first paragraph of the
    docstrings in this Python's standard library (40-300 characters, no code-like lines), n drawn
    with a fixed seed."""
    import ast
    import random
    import re
    import sys

    root = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = set()
    for path in sorted(root.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) and (doc := ast.get_docstring(node)):
                para = " ".join(doc.split("\n\n")[0].split())
                if 40 <= len(para) <= 300 and not re.search(r"[>{}=]|\w\(|::", para):
                    found.add(para)
    texts = sorted(found)
    random.Random(seed).shuffle(texts)
    return texts[:n]


def outlier_variants(run_scan, n_other: int = 750) -> dict:  # noqa: ANN001 - bench.run_scan
    """The outlier detector beyond the main corpus, next to Datalab's outlier check (defaults): the
    same 50,000 glosses with no OOD rows (every flag is a false positive), and with 750 docstrings of
    Python's standard library (technical English, a genre the OOD set does not hold)."""
    from cleanlab import Datalab

    corpus, truth_path = detector_corpus()
    truth = pl.read_parquet(truth_path)
    ood = truth.filter(pl.col("defect") == "ood")["id"].to_list()
    base = pl.read_parquet(corpus).filter(~pl.col("id").is_in(ood))
    docs = python_docstrings(n_other)
    vecs = embed_cached(docs)
    rng = np.random.default_rng(1)
    other = pl.DataFrame({"id": [f"py-{i:04d}" for i in range(len(docs))], "text": docs,
                          "label": base["label"].sample(len(docs), seed=1).to_list(),
                          "embedding": pl.Series(vecs, dtype=pl.Array(pl.Float32, vecs.shape[1]))})
    res = {}
    for name, df in (("clean", base), ("python_docstrings", pl.concat([base, other]))):
        df = df[rng.permutation(df.height).tolist()]
        path = OUT / f"outlier-{name}.parquet"
        df.write_parquet(path)
        out = OUT / f"outlier-{name}-run"
        r = run_scan(path, out)
        flags = pl.read_parquet(out / "flags.parquet", columns=["id", "is_outlier_issue", "outlier_signal"])
        planted = set(df.filter(pl.col("id").str.starts_with("py-"))["id"])
        flagged = set(flags.filter(pl.col("is_outlier_issue"))["id"])
        start = time.perf_counter()
        lab = Datalab(data={"label": df["label"].to_list()}, label_name="label", verbosity=0)
        lab.find_issues(features=np.asarray(df["embedding"].to_list(), np.float32), issue_types={"outlier": {}})
        dl_seconds = time.perf_counter() - start
        dl = set(np.asarray(df["id"].to_list())[lab.get_issues("outlier")["is_outlier_issue"].to_numpy()])
        res[name] = {"rows": df.height, "outlier_seconds": round(r["timings"]["outlier"]["seconds"], 1),
                     "uimdata": {"flagged": len(flagged), **(_prf(flagged, planted) if planted else {}),
                                 "signals": flags.filter(pl.col("is_outlier_issue"))["outlier_signal"]
                                 .value_counts().sort("outlier_signal").rows()},
                     "datalab": {"flagged": len(dl), "seconds": round(dl_seconds, 1),
                                 **(_prf(dl, planted) if planted else {})}}
        print(json.dumps({name: res[name]}), flush=True)
    return res


def run(run_scan) -> dict:  # noqa: ANN001 - bench.run_scan
    corpus, truth_path = detector_corpus()
    truth = pl.read_parquet(truth_path)
    out = OUT / "labels-run"
    r = run_scan(corpus, out)
    import duckdb

    flags = duckdb.connect(str(out / "uim.duckdb"), read_only=True).sql("SELECT * FROM flags").pl()
    timings = r["timings"]
    res = {"rows": flags.height, "seconds": {k: round(v["seconds"], 2) for k, v in timings.items()},
           "three_detectors_seconds": round(sum(timings[k]["seconds"] for k in ("label", "outlier", "long_tail")), 1),
           "peak_rss_mb": round(r["peak_rss_mb"]), "uimdata": evaluate(flags, truth),
           "long_tail_flagged": int(flags["is_long_tail_issue"].sum())}
    print(json.dumps(res), flush=True)
    res["label_models"] = label_models(out, truth)
    print(json.dumps(res["label_models"]), flush=True)
    res["datalab"] = datalab(corpus, out, truth)
    res["outlier_variants"] = outlier_variants(run_scan)
    return res


if __name__ == "__main__":
    import argparse

    from pipelines.bench_scan import run_scan

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(json.dumps(run(run_scan), indent=1))
