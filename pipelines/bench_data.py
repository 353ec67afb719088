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


def natural_near_duplicates(texts: list[str], emb: np.ndarray) -> set[int]:
    """Rows (all but the first of each group) that already look like near duplicates of another row:
    character similarity >= 0.8 with cosine >= 0.8, or cosine >= 0.95. Generous on purpose, so that a
    deduplicated base holds no pair a reasonable detector could call a duplicate."""
    from rapidfuzz.distance import Indel

    from uimdata.detectors.minhash import minhash_pairs
    from uimdata.stages.index import knn_graph
    from uimdata.stages.ingest import normalize

    norm = [normalize(t) for t in texts]
    graph = knn_graph(emb, k=10, exact_max=20000)
    pairs = {(min(i, int(j)), max(i, int(j))) for i in range(len(texts))
             for j, c in zip(graph.rows[i], graph.cos[i]) if j >= 0 and c >= 0.8}
    pairs |= {(a, b) for a, b in minhash_pairs(norm, np.arange(len(texts)), 0.5, 64).tolist()}
    drop = set()
    for a, b in sorted(pairs):
        cos = float(emb[a] @ emb[b])
        if cos >= 0.95 or (cos >= 0.8 and Indel.normalized_similarity(norm[a], norm[b]) >= 0.8):
            if a not in drop:
                drop.add(b)
    return drop


def planted_corpus(n: int, seed: int = 0, defect_frac: float = 0.02,
                   dedup_base: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    glosses = pl.read_parquet(GLOSSES, columns=["text", "label"])
    rng = np.random.default_rng(seed)
    k = int(n * defect_frac)
    n_clean = n - 3 * k
    order = rng.permutation(glosses.height)
    take = order[:int(n_clean * 1.12) if dedup_base else n_clean]
    if dedup_base:
        texts = glosses["text"].to_list()
        sample = [texts[i] for i in take]
        drop = natural_near_duplicates(sample, embed_cached(sample))
        take = np.array([t for j, t in enumerate(take) if j not in drop])[:n_clean]
        print(f"  deduplicated base: dropped {len(drop)} natural near duplicates", file=sys.stderr)
    base = glosses[take.tolist()].with_row_index("id").with_columns(pl.col("id").cast(pl.Utf8))
    rest = np.setdiff1d(order, take, assume_unique=False)
    donors = glosses[rest[:4 * k].tolist()]
    df, truth = plant_all(base, n_exact=k, n_near=k, n_corrupted=k, rng=rng, donors=donors)
    return renumber_ids(df, truth, prefix="g-", width=6)


def corpus_with_embeddings(n: int, seed: int = 0, dedup_base: bool = False) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    tag = f"{n}{'-dedup' if dedup_base else ''}"
    corpus, truth_path = OUT / f"corpus{tag}.parquet", OUT / f"truth{tag}.parquet"
    if corpus.exists() and truth_path.exists():
        return corpus, truth_path
    df, truth = planted_corpus(n, seed, dedup_base=dedup_base)
    emb = embed_cached(df["text"].to_list())
    df = df.with_columns(pl.Series("embedding", emb, dtype=pl.Array(pl.Float32, emb.shape[1])))
    df.write_parquet(corpus)
    truth.write_parquet(truth_path)
    return corpus, truth_path


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="?", type=int, default=50_000)
    ap.add_argument("--dedup", action="store_true", help="deduplicate the WordNet base first")
    a = ap.parse_args()
    print(corpus_with_embeddings(a.rows, dedup_base=a.dedup))
