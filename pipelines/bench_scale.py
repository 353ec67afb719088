"""Scaling: seconds and peak RSS per stage of `uim scan` (all detectors) at N rows with given
embeddings (synthetic, clustered, 384-d) and real text: each row joins two WordNet glosses drawn at
random, so that texts are distinct and, as in a real corpus, only a few are near copies of another
(drawing single glosses with replacement made every row one of ~9 near copies at 10^6 rows).

    python -m pipelines.bench_scale 100000 1000000          # local engine
    python -m pipelines.bench_scale --engine ray 100000     # Ray Data engine on this machine (2 CPUs)
    python -m pipelines.bench_scale --engine ray --index hnsw 1000000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_data import GLOSSES, OUT
from pipelines.bench_scan import run_scan


def corpus(n: int, dim: int = 384, seed: int = 0) -> Path:
    path = OUT / f"scale{n}-pairs.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    g = pl.read_parquet(GLOSSES, columns=["text", "label"])
    pick, pick2 = rng.integers(0, g.height, n), rng.integers(0, g.height, n)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    emb = centres[rng.integers(0, 2000, n)] + 0.7 * rng.normal(size=(n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"{a} {b}" for a, b in zip(g["text"].gather(pick).to_list(), g["text"].gather(pick2).to_list())]
    pl.DataFrame({"text": texts, "label": g["label"].gather(pick),
                  "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, dim))}).write_parquet(path)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="*", type=int, help="corpus sizes (default 100000)")
    ap.add_argument("--engine", default="local", help="local or ray")
    ap.add_argument("--index", default="auto", help="kNN index (uim scan --index)")
    a = ap.parse_args()
    engine, index = a.engine, a.index
    out = {}
    for n in a.rows or [100_000]:
        r = run_scan(corpus(n), OUT / f"scale{n}-{engine}-run", engine=engine, index=index)
        out[n] = {"engine": engine, "index": index, "seconds": round(r["seconds"], 1), "peak_rss_mb": r["peak_rss_mb"],
                  "stages": {k: [round(v["seconds"], 1), v.get("peak_rss_mb")] for k, v in r["timings"].items()}}
        print(json.dumps({n: out[n]}), flush=True)
