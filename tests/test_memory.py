"""Memory handed back between steps (glibc's heap keeps freed pages until it is trimmed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from uimdata.memory import _malloc_trim, release_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None,
                    reason="glibc's heap (malloc_trim) and /proc are Linux's")
def test_freed_heap_pages_go_back_to_the_system_between_steps():
    blocks = [bytearray(4000) for _ in range(50_000)]  # 200 MB of small blocks on the heap
    pins = blocks[::64]  # a few stay alive, spread over the heap: free() alone cannot shrink it
    before = _rss_mb()
    del blocks
    freed = _rss_mb()
    release_memory()
    after = _rss_mb()
    assert len(pins) == 782
    if freed < before - 50:
        pytest.skip("this allocator returned the pages by itself: nothing left to release")
    assert after < freed - 120, (before, freed, after)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="VmHWM is reset through Linux's procfs")
def test_each_step_reports_its_own_peak_and_the_executor_the_process_peak():
    import numpy as np

    from uimdata.executors.base import reset_peak_rss
    from uimdata.executors.local import LocalExecutor

    if not reset_peak_rss():
        pytest.skip("no permission to reset this process' peak")
    ex = LocalExecutor(progress=False)
    ex.record("small", 0.0, 0)

    def big() -> int:
        a = np.ones(400 << 17)  # 400 MB, touched
        return int(a[::4096].sum() > 0)

    ex.run_global("big", big, 1)
    ex.run_global("after", lambda: 0, 1)
    t = ex.timings
    assert t["big"]["step_peak_rss_mb"] > t["after"]["step_peak_rss_mb"] + 300
    assert t["after"]["peak_rss_mb"] == ex.peak_rss_mb >= t["big"]["step_peak_rss_mb"]


def test_the_label_model_reads_the_matrix_after_the_word_features(monkeypatch):
    """Given a function for the embedding matrix, the ensemble calls it only once the word features are
    built (the vocabulary is never held with the matrix), and gives the same probabilities as with the
    matrix itself."""
    import numpy as np

    from uimdata import label_model as lm

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(120, 8)).astype(np.float32) + y[:, None]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    texts = [f"word{c} item{i % 7} thing{c}{i % 3}" for i, c in enumerate(y)]
    sims = x @ x.T
    np.fill_diagonal(sims, -2)
    nb = np.argsort(-sims, axis=1)[:, :5]
    cos = np.take_along_axis(sims, nb, axis=1).astype(np.float32)
    calls = []
    real = lm.text_features
    monkeypatch.setattr(lm, "text_features", lambda *a, **k: (calls.append("text"), real(*a, **k))[1])

    def matrix():
        calls.append("matrix")
        return x

    lazy = lm.oof_pred_probs(matrix, y, 3, nb, cos, texts=texts)
    assert calls == ["text", "matrix"]
    assert np.array_equal(lazy, lm.oof_pred_probs(x, y, 3, nb, cos, texts=texts))


def test_a_scan_context_lets_go_of_the_matrix_and_reads_it_again(tmp_path, clean_df):
    import numpy as np

    from uimdata.context import ScanContext
    from uimdata.executors.local import LocalExecutor
    from uimdata.scan import ScanConfig, scan

    clean_df.write_parquet(tmp_path / "c.parquet")
    res = scan(ScanConfig(corpus=str(tmp_path / "c.parquet"), out=str(tmp_path / "run"), detectors=("outlier",)),
               LocalExecutor(progress=False))
    ctx = ScanContext(res.run)
    first = ctx.embeddings
    ctx.drop_embeddings()
    assert "embeddings" not in ctx.__dict__
    again = ctx.embeddings
    assert again is not first and np.array_equal(again, first)
    assert ctx.graph.rows.shape[0] == len(ctx.texts) == 30
    ctx.release()
    assert not {"embeddings", "graph", "texts"} & set(ctx.__dict__)
    given = ScanContext.from_arrays([f"r{i}" for i in range(30)], [f"t {i}" for i in range(30)], first)
    given.release()  # nothing to read them again from: kept
    assert {"embeddings", "graph"} <= set(given.__dict__) and np.allclose(given.embeddings, first)


def test_embedding_rows_take_reads_any_rows_in_the_order_asked(tmp_path):
    """``EmbeddingRows.take`` gives the vectors of rows in any order, repeats included, across shards
    and row groups, and reads only the row groups that hold one of them."""
    import numpy as np

    from tests.conftest import embedding_shards, random_embeddings
    from uimdata.rundir import EmbeddingRows

    x = random_embeddings(5000, dim=8, seed=4)
    run = embedding_shards(tmp_path, x, 2000)  # three shards of several row groups
    rows = EmbeddingRows(run.embeddings_dir)
    want = np.array([4999, 0, 2000, 1999, 7, 7, 3333])
    assert np.array_equal(rows.take(want), x[want])
    assert rows.take(np.array([], np.int64)).shape == (0, 8)
    read = []
    real = rows._groups
    rows._groups = lambda wanted: (read.append(g[0]) or g for g in real(wanted))
    assert np.array_equal(rows.take(np.array([10, 20])), x[[10, 20]])
    assert read == [0]  # one row group, the first


def test_the_label_model_reads_the_rows_it_needs_instead_of_the_matrix(tmp_path, monkeypatch):
    """In a scan context the label model gathers each fold's rows from RUN/embeddings and never reads
    the whole matrix; its probabilities are those it computes from the matrix itself."""
    import numpy as np
    import polars as pl

    from tests.conftest import random_embeddings
    from uimdata.context import ScanContext
    from uimdata.executors.local import LocalExecutor
    from uimdata.rundir import RunDir
    from uimdata.scan import ScanConfig, scan

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    x = random_embeddings(len(y), dim=16, seed=1) + 0.6 * np.eye(16, dtype=np.float32)[y]
    texts = [f"word{c}{i % 5} item{i % 7} shared{rng.integers(9)}" for i, c in enumerate(y)]
    pl.DataFrame({"id": [f"r{i}" for i in range(len(y))], "text": texts, "label": [f"c{c}" for c in y],
                  "embedding": x.tolist()}).write_parquet(tmp_path / "c.parquet")
    res = scan(ScanConfig(corpus=str(tmp_path / "c.parquet"), out=str(tmp_path / "run"), detectors=("exact_duplicate",)),
               LocalExecutor(progress=False))
    held = ScanContext(res.run)
    held.embeddings  # noqa: B018 - the matrix held: the label model uses it
    expected = held.pred_probs
    monkeypatch.setattr(RunDir, "read_embeddings", lambda self: (_ for _ in ()).throw(AssertionError("matrix read")))
    lean = ScanContext(res.run)
    assert np.array_equal(lean.pred_probs, expected)
