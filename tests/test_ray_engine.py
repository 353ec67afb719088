"""The Ray Data engine runs the same stages as the local one and writes the same tables."""

from __future__ import annotations

import signal

import duckdb
import polars as pl
import pytest
import ray  # a dev dependency: its absence is a failure, not a skip

from uimdata.executors.local import LocalExecutor
from uimdata.scan import ScanConfig, scan


@pytest.fixture(scope="module")
def ray_executor():
    from uimdata.executors.ray import RayExecutor

    ex = RayExecutor(num_cpus=2, progress=False)
    yield ex
    ray.shutdown()


def tables(run) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    return {t: con.sql(f"SELECT * FROM {t} ORDER BY id").pl() for t in ("samples", "flags")}


def test_ray_engine_matches_local(tmp_path, clean_df, ray_executor):
    def too_slow(*_):  # a hung actor pool must fail the test, not the CI run
        raise TimeoutError("the Ray engine did not finish in 300 s")

    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(300)
    try:
        rows = clean_df.to_dicts()
        df = pl.concat([clean_df, pl.DataFrame([
            {"id": "x-exact", "text": rows[3]["text"], "label": rows[3]["label"]},
            {"id": "x-near", "text": rows[5]["text"].replace("reproduces", "reprodcues"), "label": rows[5]["label"]},
            {"id": "x-html", "text": "<div><a href='/x'>Home</a> | <script>var a=1;</script></div>", "label": "food"},
        ])])
        corpus = tmp_path / "c.parquet"
        df.write_parquet(corpus)
        cfg = {"corpus": str(corpus), "k": 5}
        scan(ScanConfig(out=str(tmp_path / "local"), **cfg), LocalExecutor(progress=False))
        res = scan(ScanConfig(out=str(tmp_path / "ray"), engine="ray", **cfg), ray_executor)
    finally:
        signal.alarm(0)
    local, remote = tables(tmp_path / "local"), tables(tmp_path / "ray")
    assert local["samples"].equals(remote["samples"])
    exact_cols = [c for c in local["flags"].columns if not c.endswith("_score") and "reason" not in c]
    assert local["flags"].select(exact_cols).equals(remote["flags"].select(exact_cols))
    for c in [c for c in local["flags"].columns if c.endswith("_score")]:
        assert (local["flags"][c] - remote["flags"][c]).abs().max() < 1e-4, c
    assert {"ingest", "embed", "corrupted"} <= set(res.timings)
    flagged = set(remote["flags"].filter(pl.col("is_exact_duplicate_issue") | pl.col("is_near_duplicate_issue")
                                         | pl.col("is_corrupted_issue"))["id"])
    assert flagged == {"x-exact", "x-near", "x-html"}


def test_without_ray_the_engine_says_how_to_install(monkeypatch, tmp_path, clean_df):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    from uimdata.errors import UimError
    from uimdata.executors.ray import RayExecutor

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UimError, match=r"pip install 'uimdata\[ray\]'"):
        RayExecutor()


@pytest.mark.parametrize("approx", ["ivf", "ivfpq"])
def test_ray_tasks_run_the_sharded_knn_search(ray_executor, approx):
    """Global-step shards (IVF-PQ search + exact re-ranking) as Ray tasks equal the in-process run."""
    import numpy as np

    from uimdata.stages.index import knn_graph

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    local = knn_graph(x, k=5, exact_max=500, approx=approx, pmap=LocalExecutor(progress=False).map_tasks)
    remote = knn_graph(x, k=5, exact_max=500, approx=approx, pmap=ray_executor.map_tasks)
    assert remote.kind.startswith(approx) and "shards" in remote.kind
    assert np.array_equal(local.rows, remote.rows) and np.allclose(local.cos, remote.cos)


def test_ray_tasks_assign_kmeans_clusters(ray_executor):
    """k-means trained on a sample, every row assigned in shards: Ray tasks give the local answer."""
    import numpy as np

    from uimdata.stages.kmeans import kmeans_assign

    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    local = kmeans_assign(x, 12, shard_rows=1000)
    remote = kmeans_assign(x, 12, shard_rows=1000, pmap=ray_executor.map_tasks)
    assert np.array_equal(local, remote) and len(np.unique(local)) == 12


def test_ray_workers_read_parquet_corpora_themselves(tmp_path, clean_df, ray_executor, monkeypatch):
    """Under Ray a parquet corpus is read in the tasks (the driver reads footers only: reading rows in this
    process fails here), rows and ids as the local engine reads them; a bad row comes back as the one-line
    error naming it."""
    from uimdata.errors import UimError
    from uimdata.stages.ingest import CorpusReader

    corpus = tmp_path / "c.parquet"
    clean_df.write_parquet(corpus, row_group_size=10)  # 30 rows: three row groups
    local = scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / "local"), detectors=("exact_duplicate",), k=3),
                 LocalExecutor(progress=False))

    def driver_reads(self):
        raise AssertionError("the driver read the corpus's rows")

    monkeypatch.setattr(CorpusReader, "batches", driver_reads)
    remote = scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / "ray"), engine="ray",
                             detectors=("exact_duplicate",), k=3), ray_executor)
    assert remote.run.read_samples().equals(local.run.read_samples())
    bad = clean_df.with_columns(pl.when(pl.int_range(pl.len()) == 25).then(None).otherwise(pl.col("id")).alias("id"))
    bad.write_parquet(tmp_path / "bad.parquet", row_group_size=10)
    with pytest.raises(UimError, match="id is null at row 25"):
        scan(ScanConfig(corpus=str(tmp_path / "bad.parquet"), out=str(tmp_path / "r"), engine="ray", id_col="id",
                        detectors=("exact_duplicate",)), ray_executor)


def test_ray_read_tasks_write_the_embedding_shards_themselves(tmp_path, ray_executor, monkeypatch):
    """Under Ray a given embedding column is written to RUN/embeddings by the read tasks: no batch the
    driver takes holds it, and the matrix is the local engine's; a file whose dimension differs is the
    one-line error naming it."""
    import numpy as np

    from tests.conftest import random_embeddings
    from uimdata.errors import UimError
    from uimdata.shards import EmbeddingShards

    folder = tmp_path / "corpus"
    folder.mkdir()
    emb = random_embeddings(90, dim=8, seed=2) * 2.0  # not unit length: normalised where written
    for k in range(3):
        pl.DataFrame({"id": [f"r{k}-{i}" for i in range(30)], "text": [f"text {k} {i}" for i in range(30)],
                      "embedding": pl.Series(emb[30 * k:30 * (k + 1)], dtype=pl.Array(pl.Float32, 8))}
                     ).write_parquet(folder / f"part-{k}.parquet", row_group_size=10)
    cfg = {"corpus": str(folder), "detectors": ("exact_duplicate",), "k": 3}
    local = scan(ScanConfig(out=str(tmp_path / "local"), **cfg), LocalExecutor(progress=False))
    real_take = EmbeddingShards.take

    def take(self, part, source):
        assert "embedding" not in part.column_names, "the driver got the embeddings"
        return real_take(self, part, source)

    monkeypatch.setattr(EmbeddingShards, "take", take)
    remote = scan(ScanConfig(out=str(tmp_path / "ray"), engine="ray", **cfg), ray_executor)
    assert np.array_equal(remote.run.read_embeddings(), local.run.read_embeddings())
    assert remote.run.read_samples().equals(local.run.read_samples())
    assert len(list(remote.run.embeddings_dir.glob("part-*.parquet"))) == 3
    pl.DataFrame({"id": ["x"], "text": ["other"], "embedding": pl.Series(random_embeddings(1, dim=6),
                                                                       dtype=pl.Array(pl.Float32, 6))}
                 ).write_parquet(folder / "part-3.parquet")
    with pytest.raises(UimError, match="part-3.parquet.*row 90"):
        scan(ScanConfig(out=str(tmp_path / "bad"), engine="ray", **cfg), ray_executor)


def test_ray_kmeans_tasks_read_the_embedding_shards_themselves(tmp_path, ray_executor, monkeypatch):
    """Given the run's embedding rows, the k-means assignment tasks read their rows from the shards: the
    driver puts no matrix in the object store, and the clusters are the in-process ones."""
    import numpy as np

    from tests.conftest import embedding_shards, random_embeddings
    from uimdata.rundir import EmbeddingRows
    from uimdata.stages.kmeans import kmeans_assign

    x = random_embeddings(4000, dim=16, seed=3)
    run = embedding_shards(tmp_path, x, 1500)  # three shards of several row groups
    rows = EmbeddingRows(run.embeddings_dir)
    assert np.array_equal(rows[1490:1510], x[1490:1510]) and np.array_equal(rows[0:4000], run.read_embeddings())
    sent = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value: (sent.append(value), real_put(value))[1])
    remote = kmeans_assign(x, 12, shard_rows=1000, pmap=ray_executor.map_tasks, rows=rows)
    assert np.array_equal(remote, kmeans_assign(x, 12, shard_rows=1000, rows=rows))
    assert sent and all(not isinstance(v.get("emb"), np.ndarray) for v in sent)
