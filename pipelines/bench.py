"""`make bench`: speed, memory and detection quality of `uim scan`, next to cleanlab Datalab.

``python -m pipelines.bench [tail|loop]`` (``tail`` or ``loop``: only that part).

1. demo corpus (real text, model embeddings): per-stage rows/s, peak RSS, P/R/F1 per detector.
2. embedding overhead: the embed stage (cache included) vs the bare model's ``encode``.
3. 50,000-row corpus with precomputed embeddings (see bench_data.py): all stages after
   embedding, kNN recall@10 of the index against exact search, P/R/F1, and Datalab's
   near-duplicate check on the same embeddings, timed in the same run.
4. label / outlier / long_tail on 51,500 rows with planted label noise and other-language /
   other-domain rows (bench_detectors.py), next to Datalab's default find_issues.
5. a real corpus: Debian changelogs, copyright files, Python docstrings and man pages, long documents
   in five files of four formats with planted defects, per source and per issue (bench_corpora.py).

Each scan runs in a fresh subprocess so that peak RSS is its own. Results are printed and
written to runs/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_scan import flags_of, quality, run_scan

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "bench"
DEMO = ROOT / "uimdata" / "data" / "demo"


def stage_table(timings: dict) -> dict:
    return {k: {"seconds": round(v["seconds"], 2),
                "rows_per_s": round(v["rows"] / v["seconds"]) if v["seconds"] > 0 else None}
            for k, v in timings.items()}


def embed_overhead(n: int = 600, repeats: int = 3) -> dict:
    import tempfile

    from uimdata.executors.local import LocalExecutor
    from uimdata.stages.embed import EmbedStage, embed_texts

    texts = pl.read_parquet(DEMO / "corpus.parquet")["text"].head(n).to_list()
    stage = EmbedStage()
    stage.setup()
    stage.encode(texts[:64])  # warm-up
    bare, ours = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        stage.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        bare.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as cache:  # empty cache: every text is embedded
            t = time.perf_counter()
            embed_texts(EmbedStage(chunking="auto"), texts, LocalExecutor(progress=False), cache)
            ours.append(time.perf_counter() - t)
    b, o = float(np.median(bare)), float(np.median(ours))
    return {"texts": n, "bare_encode_s": round(b, 2), "uim_embed_s": round(o, 2),
            "overhead_pct": round(100 * (o - b) / b, 1), "bare_texts_per_s": round(n / b)}


def knn_recall(run: Path, queries: int = 2000, seed: int = 0) -> float:
    from uimdata.rundir import RunDir
    from uimdata.stages.index import read_graph

    rd = RunDir(run)
    emb = rd.read_embeddings()
    graph = read_graph(rd, emb.shape[0])
    q = np.random.default_rng(seed).choice(emb.shape[0], size=min(queries, emb.shape[0]), replace=False)
    k = graph.rows.shape[1]
    sims = emb[q] @ emb.T
    sims[np.arange(len(q)), q] = -np.inf
    true = np.argpartition(-sims, k, axis=1)[:, :k]
    hits = [len(set(true[i]) & set(graph.rows[qi])) for i, qi in enumerate(q)]
    return float(np.sum(hits) / (len(q) * k))


def datalab_near_duplicates(corpus: Path, truth: pl.DataFrame) -> dict:
    from cleanlab import Datalab

    from uimdata.evaluate import PRF, membership_prf, pair_prf

    df = pl.read_parquet(corpus)
    emb = np.asarray(df["embedding"].to_list(), dtype=np.float32)
    start = time.perf_counter()
    lab = Datalab(data={"text": df["text"].to_list()}, verbosity=0)
    lab.find_issues(features=emb, issue_types={"near_duplicate": {}})
    seconds = time.perf_counter() - start
    issues = lab.get_issues("near_duplicate")
    ids = df["id"].to_list()
    # Datalab's near duplicates include exact copies: leave rows of exact-duplicate groups out, as for uimdata
    from uimdata.stages.ingest import text_hash

    hashes = [text_hash(t) for t in df["text"].to_list()]
    counts = pl.Series(hashes).value_counts().filter(pl.col("count") > 1)
    in_exact = set(counts[:, 0].to_list())
    flagged = np.array([i for i in np.flatnonzero(issues["is_near_duplicate_issue"].to_numpy())
                        if hashes[i] not in in_exact], dtype=np.int64)
    sets = issues["near_duplicate_sets"].to_list()
    cluster_of: dict[str, object] = {}
    for i in flagged:  # Datalab flags every member of a set; a set = the row and its listed mates
        members = sorted({int(i), *map(int, sets[i])})
        cluster_of[ids[i]] = min(members)
    pairs = truth.filter(pl.col("defect") == "near_duplicate").select("id", "source_id").rows()
    # Datalab keeps no member: score its flags pair-aware as if each flagged row pointed at a set mate
    flagged_to = {ids[i]: ids[int(sets[i][0])] for i in flagged if len(sets[i])}
    pa: PRF = pair_prf(flagged_to, cluster_of, pairs)
    mem = membership_prf(set(cluster_of), pairs, exact_ids=set())
    return {"seconds": round(seconds, 1), "pair_aware": pa.row(), "membership": mem.row()}


def scaling() -> dict:
    """10^5 and 10^6 rows with given embeddings, local engine and Ray engine (about 25 minutes)."""
    from pipelines.bench_scale import corpus

    out = {}
    for n, engine, index in [(100_000, "local", "auto"), (100_000, "ray", "auto"),
                             (1_000_000, "local", "auto"), (1_000_000, "ray", "hnsw")]:
        print(f"== scaling: {n:,} rows, {engine} engine, index {index}", flush=True)
        r = run_scan(corpus(n), OUT / f"scale{n}-{engine}-run", engine=engine, index=index)
        out[f"{n}-{engine}"] = {"index": index, "seconds": round(r["seconds"], 1), "peak_rss_mb": r["peak_rss_mb"],
                                "stages": {k: round(v["seconds"], 1) for k, v in r["timings"].items()}}
        print(json.dumps(out[f"{n}-{engine}"]), flush=True)
    return out


def loop() -> dict:
    print("== uim link / curate / probe on 42,664 rows with a poisoned concept, vs Datalab and an oracle",
          flush=True)
    from pipelines.bench_loop import run as run_loop

    return run_loop(run_scan)


def tail() -> dict:
    print("== tail-aware curation: link / curate / probe on Debian packages and WordNet glosses, vs Datalab and "
          "an oracle", flush=True)
    from pipelines.bench_tail import run as run_tail

    return run_tail(run_scan)


def main() -> None:
    from pipelines.bench_data import corpus_with_embeddings

    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    truth = pl.read_parquet(DEMO / "truth.parquet")
    print("== demo corpus (2,920 rows, all-MiniLM-L6-v2 on CPU)", flush=True)
    r = run_scan(DEMO / "corpus.parquet", OUT / "demo", cold_cache=True)
    results["demo"] = {"stages": stage_table(r["timings"]), "seconds": round(r["seconds"], 1),
                       "peak_rss_mb": round(r["peak_rss_mb"]), "quality": quality(flags_of(OUT / "demo"), truth)}
    print(json.dumps(results["demo"], indent=1), flush=True)

    print("== embedding overhead vs bare model.encode", flush=True)
    results["embed_overhead"] = embed_overhead()
    print(json.dumps(results["embed_overhead"]), flush=True)

    for dedup in (False, True):
        name = "50k-dedup" if dedup else "50k"
        print(f"== 50,000 rows with precomputed embeddings ({'deduplicated' if dedup else 'raw'} WordNet base)",
              flush=True)
        corpus, truth_path = corpus_with_embeddings(50_000, dedup_base=dedup)
        truth50 = pl.read_parquet(truth_path)
        r = run_scan(corpus, OUT / name)
        after_embed = sum(v["seconds"] for k, v in r["timings"].items() if k not in ("ingest", "embed"))
        results[name] = {"stages": stage_table(r["timings"]), "seconds_total": round(r["seconds"], 1),
                         "seconds_after_embedding": round(after_embed, 1), "peak_rss_mb": round(r["peak_rss_mb"]),
                         "knn_recall_at_10": round(knn_recall(OUT / name), 4),
                         "quality": quality(flags_of(OUT / name), truth50)}
        print(json.dumps(results[name], indent=1), flush=True)
        print("== cleanlab Datalab near_duplicate (defaults) on the same embeddings", flush=True)
        results[f"{name}_datalab"] = datalab_near_duplicates(corpus, truth50)
        print(json.dumps(results[f"{name}_datalab"], indent=1), flush=True)
    print("== label / outlier / long_tail on 51,500 rows with planted label noise and OOD rows, vs Datalab",
          flush=True)
    from pipelines.bench_detectors import run as run_detectors

    results["detectors"] = run_detectors(run_scan)
    print(json.dumps(results["detectors"], indent=1), flush=True)
    results["loop"] = loop()
    results["tail"] = tail()
    # real multi-source long-document corpus (docs/corpora.md)
    from pipelines.bench_corpora import run as run_real

    results["real_corpus"] = run_real(run_scan)
    print(json.dumps(results["real_corpus"], indent=1, default=str), flush=True)
    results["scaling"] = scaling()
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"written {OUT / 'results.json'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", nargs="?", choices=["tail", "loop"],
                    help="run only this part: tail (tail-aware curation) or loop (link / curate / probe)")
    part = ap.parse_args().part
    if part == "tail":
        tail()
    elif part == "loop":
        OUT.mkdir(parents=True, exist_ok=True)
        res = loop()
        (OUT / "results-loop.json").write_text(json.dumps(res, indent=2, default=str))
    else:
        main()
