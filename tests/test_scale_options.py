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


def test_given_embeddings_go_to_shards_as_ingest_reads_them(tmp_path, monkeypatch):
    """A given embedding column is written to RUN/embeddings batch by batch (several shards here), normalised,
    with the ids samples ends with: also when repeated texts' derived ids get ``~2`` suffixes."""
    import uimdata.shards as shards_mod
    from uimdata.stages.ingest import IngestStage

    monkeypatch.setattr(shards_mod, "SHARD_ROWS", 64)
    monkeypatch.setattr(IngestStage, "batch_size", 50)
    n = 300
    emb = random_embeddings(n, dim=8, seed=5) * 3.0  # not unit length: the scan normalises
    texts = [f"text {i % 280}" for i in range(n)]  # rows 280.. repeat rows 0..19: derived ids get ~2
    path = tmp_path / "c.parquet"
    pl.DataFrame({"text": texts, "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, 8))}).write_parquet(path)
    run = scan(ScanConfig(corpus=str(path), out=str(tmp_path / "r"), detectors=("exact_duplicate",))).run
    shards = sorted(run.embeddings_dir.glob("part-*.parquet"))
    assert len(shards) == 3 and all(pq.read_metadata(s).num_rows == 100 for s in shards)  # 2 batches a shard
    assert not list(run.embeddings_dir.glob(".*"))  # no temporary file left
    ids = pl.concat([pl.read_parquet(s, columns=["id"]) for s in shards])["id"].to_list()
    samples = run.read_samples(columns=["id", "row"]).to_pydict()
    assert samples["row"] == list(range(n)) and ids == samples["id"]
    assert sum(i.endswith("~2") for i in ids) == 20
    m = run.read_embeddings()
    assert np.allclose(m, emb / np.linalg.norm(emb, axis=1, keepdims=True), atol=1e-6)
    assert "embedding" not in run.read_samples().column_names


def test_embedding_dimension_changing_between_files_names_the_row(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pl.DataFrame({"text": ["a b", "c d"], "embedding": [[0.1, 0.2, 0.3], [0.3, 0.1, 0.2]]}).write_parquet(d / "a.parquet")
    pl.DataFrame({"text": ["e f", "g h"], "embedding": [[0.1, 0.2], [0.3, 0.1]]}).write_parquet(d / "b.parquet")
    with pytest.raises(UimError, match="embedding dimension changes at row 2"):
        scan(ScanConfig(corpus=str(d), out=str(tmp_path / "r"), detectors=("exact_duplicate",)))
    assert not (tmp_path / "r").exists()
