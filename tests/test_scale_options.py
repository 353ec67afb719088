"""Options for large corpora: float16 embedding storage and the choice of kNN index."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.conftest import random_embeddings
from uimdata.errors import UimError
from uimdata.rundir import RunDir
from uimdata.scan import ScanConfig, scan


@pytest.fixture
def corpus(tmp_path):
    n = 400
    emb = random_embeddings(n, dim=24, seed=3)
    df = pl.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [f"row number {i} of the corpus" for i in range(n)],
                       "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, 24))})
    path = tmp_path / "c.parquet"
    df.write_parquet(path)
    return path, emb


def test_float16_storage_halves_the_matrix_and_keeps_the_graph(tmp_path, corpus):
    path, emb = corpus
    runs = {}
    for dtype in ("float32", "float16"):
        runs[dtype] = scan(ScanConfig(corpus=str(path), out=str(tmp_path / dtype), embedding_dtype=dtype,
                                      detectors=("exact_duplicate",))).run
    shard = sorted((tmp_path / "float16" / "embeddings").glob("part-*.parquet"))[0]
    assert str(pq.read_schema(shard).field("embedding").type.value_type) == "halffloat"
    m16, m32 = RunDir(tmp_path / "float16").read_embeddings(), RunDir(tmp_path / "float32").read_embeddings()
    assert m16.dtype == np.float32 and np.abs(m16 - m32).max() < 1e-3
    nb = {d: duckdb.connect(str(r.path / "uim.duckdb"), read_only=True).sql(
        "SELECT id, list(neighbor_id ORDER BY rank) FROM neighbors GROUP BY id ORDER BY id").fetchall()
        for d, r in runs.items()}
    same = np.mean([len(set(a[1]) & set(b[1])) / len(a[1]) for a, b in zip(nb["float32"], nb["float16"])])
    assert same > 0.97
    with pytest.raises(UimError, match="embedding-dtype"):
        scan(ScanConfig(corpus=str(path), out=str(tmp_path / "bad"), embedding_dtype="int8"))
    assert not (tmp_path / "bad").exists()


def test_index_choice_reaches_the_run(tmp_path, corpus):
    path, _ = corpus
    for index in ("hnsw", "ivf"):
        run = scan(ScanConfig(corpus=str(path), out=str(tmp_path / index), exact_max=100, index=index,
                              detectors=("exact_duplicate",))).run
        assert run.read_meta()["index"].startswith(index)
