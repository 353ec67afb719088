"""Scaling: seconds and peak RSS per stage of `uim scan` (all detectors) at N rows with given
embeddings (synthetic, clustered, 384-d) and real text (WordNet glosses drawn with replacement,
each with its row number so that texts are distinct).

    python pipelines/bench_scale.py 100000 1000000
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from bench import run_scan  # noqa: E402
from bench_data import GLOSSES, OUT  # noqa: E402


def corpus(n: int, dim: int = 384, seed: int = 0) -> Path:
    path = OUT / f"scale{n}.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    g = pl.read_parquet(GLOSSES, columns=["text", "label"])
    pick = rng.integers(0, g.height, n)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    emb = centres[rng.integers(0, 2000, n)] + 0.7 * rng.normal(size=(n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"{t} (entry {i})" for i, t in enumerate(g["text"].gather(pick).to_list())]
    pl.DataFrame({"text": texts, "label": g["label"].gather(pick),
                  "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, dim))}).write_parquet(path)
    return path


if __name__ == "__main__":
    out = {}
    for n in [int(a) for a in sys.argv[1:]] or [100_000]:
        r = run_scan(corpus(n), OUT / f"scale{n}-run")
        out[n] = {"seconds": round(r["seconds"], 1), "peak_rss_mb": r["peak_rss_mb"],
                  "stages": {k: [round(v["seconds"], 1), v.get("peak_rss_mb")] for k, v in r["timings"].items()}}
        print(json.dumps({n: out[n]}), flush=True)
