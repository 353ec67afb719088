"""Benchmark corpora built from the packaged WordNet glosses (real text), with planted defects.

``corpus_with_embeddings(n)`` samples n real glosses, plants exact duplicates, near duplicates
(small edits) and corrupted texts (``uimdata.synth``), embeds everything with the default model
through uimdata's embedding cache (slow once, instant afterwards) and writes
``runs/bench/corpus{n}.parquet`` (id, text, label, embedding) and ``truth{n}.parquet``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from uimdata.stages.embed import DEFAULT_MODEL, EmbeddingCache, EmbedStage, content_hashes, default_cache_dir
from uimdata.synth import plant_all, renumber_ids

GLOSSES = Path(__file__).resolve().parents[1] / "uimdata" / "data" / "wordnet" / "glosses.parquet"
OUT = Path("runs/bench")


def embed_cached(texts: list[str], model: str = DEFAULT_MODEL, chunk: int = 2048) -> np.ndarray:
    cache = EmbeddingCache(default_cache_dir(), model)
    hashes = content_hashes(texts)
    found = cache.lookup(hashes)
    todo = sorted({h: i for i, h in enumerate(hashes) if h not in found}.values(), key=lambda i: len(texts[i]))
    if todo:
        stage = EmbedStage(model)
        start = time.perf_counter()
        for s in range(0, len(todo), chunk):
            rows = todo[s:s + chunk]
            emb = stage.encode([texts[i] for i in rows])
            cache.add([hashes[i] for i in rows], emb)
            found.update(zip([hashes[i] for i in rows], emb))
            done = s + len(rows)
            rate = done / (time.perf_counter() - start)
            print(f"  embedded {done}/{len(todo)} ({rate:.0f}/s)", file=sys.stderr, flush=True)
    return np.stack([found[h] for h in hashes]).astype(np.float32)


def planted_corpus(n: int, seed: int = 0, defect_frac: float = 0.02) -> tuple[pl.DataFrame, pl.DataFrame]:
    glosses = pl.read_parquet(GLOSSES, columns=["text", "label"])
    rng = np.random.default_rng(seed)
    k = int(n * defect_frac)
    n_clean = n - 3 * k
    order = rng.permutation(glosses.height)
    base = glosses[order[:n_clean].tolist()].with_row_index("id").with_columns(pl.col("id").cast(pl.Utf8))
    donors = glosses[order[n_clean:n_clean + 4 * k].tolist()]
    df, truth = plant_all(base, n_exact=k, n_near=k, n_corrupted=k, rng=rng, donors=donors)
    return renumber_ids(df, truth, prefix="g-", width=6)


def corpus_with_embeddings(n: int, seed: int = 0) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    corpus, truth_path = OUT / f"corpus{n}.parquet", OUT / f"truth{n}.parquet"
    if corpus.exists() and truth_path.exists():
        return corpus, truth_path
    df, truth = planted_corpus(n, seed)
    emb = embed_cached(df["text"].to_list())
    df = df.with_columns(pl.Series("embedding", emb, dtype=pl.Array(pl.Float32, emb.shape[1])))
    df.write_parquet(corpus)
    truth.write_parquet(truth_path)
    return corpus, truth_path


if __name__ == "__main__":
    print(corpus_with_embeddings(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))
