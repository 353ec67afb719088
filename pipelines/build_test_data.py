"""Build ``tests/data/genre_mix.parquet``: real text with real embeddings for the outlier tests.

5,000 WordNet glosses (``uimdata/data/wordnet``) and 100 English fortunes (jokes, quotations:
``kind = "other_domain"`` in ``uimdata/data/ood``), drawn with a fixed seed, embedded with the default
model (all-MiniLM-L6-v2) through uimdata's embedding cache, stored as int8 (round(127 x), cosine
error < 0.01) so the file stays small and the tests need no model. Columns: id, text, label
(for the fortunes, a gloss label drawn at random), planted (bool), embedding_i8 (384 int8).

Run: ``python -m pipelines.build_test_data`` (about a minute on 2 cores when nothing is cached).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_data import GLOSSES, embed_cached

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "genre_mix.parquet"
OOD = ROOT / "uimdata" / "data" / "ood" / "ood.parquet"
N_GLOSSES, N_OTHER, SEED = 5000, 100, 7


def build() -> pl.DataFrame:
    glosses = pl.read_parquet(GLOSSES, columns=["text", "label"]).sample(N_GLOSSES, seed=SEED)
    other = pl.read_parquet(OOD).filter(pl.col("kind") == "other_domain").sample(N_OTHER, seed=SEED)
    # planted rows carry a label drawn from the glosses' labels, as in the benchmark: nothing but the
    # text and the embedding gives them away
    other = other.select("text", glosses["label"].sample(N_OTHER, seed=SEED + 1).alias("label"))
    df = pl.concat([glosses.with_columns(planted=pl.lit(False)), other.with_columns(planted=pl.lit(True))])
    df = df.sample(fraction=1.0, shuffle=True, seed=SEED)
    emb = embed_cached(df["text"].to_list())
    q = np.clip(np.round(emb * 127), -127, 127).astype(np.int8)
    return df.with_row_index("id").with_columns(
        pl.format("m{}", pl.col("id")).alias("id"),
        pl.Series("embedding_i8", q, dtype=pl.Array(pl.Int8, q.shape[1])))


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    df = build()
    df.write_parquet(OUT, compression="zstd", compression_level=19)
    print(OUT, df.height, f"{OUT.stat().st_size / 1e6:.2f} MB")
