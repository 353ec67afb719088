"""The contracts between the scan's parts hold: declared stage columns are checked before any work, a
detector's declared flags columns are the ones it writes, both engines implement one executor protocol,
a global step takes the executor's parallel map, and reading a context's properties writes nothing."""

from __future__ import annotations

import inspect
from typing import ClassVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import CLEAN, random_embeddings
from uimdata.context import ScanContext
from uimdata.detectors.corrupted import CorruptedDetector
from uimdata.detectors.exact_duplicate import ExactDuplicateDetector
from uimdata.detectors.long_tail import LongTailDetector
from uimdata.errors import UimError
from uimdata.executors.base import Executor
from uimdata.executors.local import LocalExecutor
from uimdata.executors.ray import RayExecutor
from uimdata.rundir import RunDir
from uimdata.scan import ScanConfig, scan
from uimdata.stages.base import GlobalStep, Stage, check_pipeline
from uimdata.stages.embed import EmbedStage
from uimdata.stages.index import KnnIndex
from uimdata.stages.ingest import IngestStage


class NeedsToxicity(Stage):
    name: ClassVar[str] = "toxicity_filter"
    needs: ClassVar[tuple[str, ...]] = ("text", "toxicity")


class AddsToxicity(Stage):
    name: ClassVar[str] = "toxicity"
    needs: ClassVar[tuple[str, ...]] = ("text",)
    adds: ClassVar[tuple[str, ...]] = ("toxicity",)


@pytest.fixture
def corpus(tmp_path):
    texts = [t for t, _ in CLEAN]
    path = tmp_path / "c.parquet"
    pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, "label": [lab for _, lab in CLEAN],
                  "embedding": random_embeddings(len(texts)).tolist()}).write_parquet(path)
    return path


def test_a_stage_whose_needs_no_earlier_stage_adds_is_an_error():
    with pytest.raises(UimError, match=r"stage 'toxicity_filter' needs column\(s\) \['toxicity'\]") as e:
        check_pipeline([IngestStage("c.parquet"), EmbedStage(), NeedsToxicity()])
    assert "\n" not in str(e.value)
    check_pipeline([IngestStage("c.parquet"), AddsToxicity(), NeedsToxicity()])  # added before: fine
    check_pipeline([NeedsToxicity()], given=["text", "toxicity"])


def test_a_scan_with_unmet_needs_fails_before_any_work(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(CorruptedDetector, "needs", ("id", "text", "toxicity"))
    ex = LocalExecutor(progress=False)
    with pytest.raises(UimError, match=r"stage 'corrupted' needs column\(s\) \['toxicity'\]"):
        scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / "run")), ex)
    assert ex.timings == {}, "nothing ran: not even ingest"
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.*"))


def test_two_detectors_adding_one_flags_column_fail_before_any_work(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(LongTailDetector, "extra_columns", {"duplicate_of": pa.string()})
    ex = LocalExecutor(progress=False)
    with pytest.raises(UimError, match="'exact_duplicate' and 'long_tail' both add the flags column 'duplicate_of'"):
        scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / "run")), ex)
    assert ex.timings == {}


def test_a_result_holds_exactly_the_declared_flags_columns():
    det = ExactDuplicateDetector()
    assert list(det.flag_columns()) == ["is_exact_duplicate_issue", "exact_duplicate_score",
                                        "exact_duplicate_reason", "duplicate_of"]
    ctx = ScanContext.from_arrays(["a", "b", "c"], ["x y", "x y", "z"], random_embeddings(3), k=2)
    table = det.detect(ctx).table
    det.check_result(table)
    with pytest.raises(RuntimeError, match="exact_duplicate"):
        det.check_result(table.drop_columns(["duplicate_of"]))
    with pytest.raises(RuntimeError, match="exact_duplicate"):
        det.check_result(table.set_column(4, "duplicate_of", pa.array([None] * 3, pa.large_string())))


def test_both_engines_implement_one_executor_protocol_as_siblings():
    assert not issubclass(RayExecutor, LocalExecutor) and not issubclass(LocalExecutor, RayExecutor)
    assert isinstance(LocalExecutor(progress=False), Executor)
    for name in ("imap", "map", "run_global", "map_tasks", "record"):
        assert callable(getattr(RayExecutor, name)), name


def test_the_knn_index_is_a_global_step_with_the_step_signature():
    assert issubclass(KnnIndex, GlobalStep)
    assert inspect.signature(KnnIndex.run) == inspect.signature(GlobalStep.run)


def test_reading_pred_probs_writes_nothing_until_asked(tmp_path, corpus):
    run = scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / "run"), detectors=("exact_duplicate",)),
               LocalExecutor(progress=False)).run
    path = run.path / "pred_probs.parquet"
    assert not path.exists(), "no detector used the probabilities"
    ctx = ScanContext(RunDir(run.path), label_model="knn")
    assert ctx.write_pred_probs() is False and not path.exists()
    probs = ctx.pred_probs
    assert probs.shape == (len(CLEAN), len(ctx.classes)) and not path.exists()
    assert ctx.write_pred_probs() is True
    t = pq.read_table(path)
    assert t.column("id").to_pylist() == ctx.ids.to_pylist()
    assert t.schema.metadata[b"model"] == b"knn" and t.schema.metadata[b"classes"].decode().split("\x1f") == ctx.classes
    assert np.allclose(np.asarray(t.column("pred_probs").to_pylist()), probs, atol=1e-6)


def test_a_context_from_arrays_has_what_a_scan_gives_detectors():
    texts = [t for t, _ in CLEAN]
    ctx = ScanContext.from_arrays([f"r{i}" for i in range(len(texts))], texts, 3 * random_embeddings(len(texts)),
                                  labels=[lab for _, lab in CLEAN], k=4)
    assert ctx.run is None and ctx.n == len(texts)
    assert {"id", "text", "text_hash", "n_chars", "row", "label"} <= set(ctx.samples.column_names)
    assert np.allclose(np.linalg.norm(ctx.embeddings, axis=1), 1.0)
    assert ctx.graph.rows.shape == (len(texts), 4) and (ctx.graph.rows != np.arange(len(texts))[:, None]).all()
    assert ctx.classes == sorted({lab for _, lab in CLEAN})


class _WhichProcess(Stage):
    """Adds the id of the process that handled each row."""

    name: ClassVar[str] = "which_process"
    needs: ClassVar[tuple[str, ...]] = ("text",)
    adds: ClassVar[tuple[str, ...]] = ("pid",)
    parallel: ClassVar[bool] = True

    def process(self, batch: pa.Table) -> pa.Table:
        import os

        return batch.append_column("pid", pa.array([os.getpid()] * batch.num_rows, pa.int64()))


def test_the_local_executor_runs_large_parallel_stages_in_worker_processes(tmp_path, corpus, monkeypatch):
    """A ``parallel`` stage whose rows hold enough text runs in worker processes, in slices of a batch,
    rows back in order; a small one, or any stage with ``workers=1``, in this process; and a scan's flags
    are the same either way."""
    import os

    import uimdata.executors.local as local

    batch = pa.table({"text": [f"row {i} " * 50 for i in range(400)]})
    assert local._string_bytes(batch) < local.PARALLEL_MIN_BYTES
    small = pa.concat_tables(LocalExecutor(progress=False, workers=2).map(_WhichProcess(), [batch]))
    assert set(small.column("pid").to_pylist()) == {os.getpid()}
    monkeypatch.setattr(local, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(local, "CHUNK_BYTES", local._string_bytes(batch) // 4)
    parts = LocalExecutor(progress=False, workers=2).map(_WhichProcess(), [batch.slice(0, 200), batch.slice(200)])
    assert len(parts) >= 4  # each batch in slices
    split = pa.concat_tables(parts)
    assert os.getpid() not in split.column("pid").to_pylist()
    assert split.column("text").to_pylist() == batch.column("text").to_pylist()
    serial = pa.concat_tables(LocalExecutor(progress=False, workers=1).map(_WhichProcess(), [batch]))
    assert set(serial.column("pid").to_pylist()) == {os.getpid()}
    # without a row count (ingest reads files): in this process until the text seen is large, then workers
    monkeypatch.setattr(local, "PARALLEL_MIN_BYTES", local._string_bytes(batch.slice(0, 100)) + 1)
    stream = LocalExecutor(progress=False, workers=2).map(_WhichProcess(), [batch.slice(i, 100) for i in range(0, 400, 100)])
    assert set(pa.concat_tables(stream[:2]).column("pid").to_pylist()) == {os.getpid()}  # 2 batches seen here
    later = pa.concat_tables(stream[2:])
    assert later.num_rows == 200 and os.getpid() not in later.column("pid").to_pylist()
    assert pa.concat_tables(stream).column("text").to_pylist() == batch.column("text").to_pylist()

    def flags(workers: int, out: str) -> pl.DataFrame:
        scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / out), k=3,
                        detectors=("exact_duplicate", "near_duplicate", "corrupted", "low_quality")),
             LocalExecutor(progress=False, workers=workers))
        return pl.read_parquet(tmp_path / out / "flags.parquet")

    assert flags(2, "two").equals(flags(1, "one"))


def test_worker_processes_get_and_give_back_only_their_rows(monkeypatch):
    """A slice of a batch crosses to a worker as its own rows, and what the worker gives back holds only
    those rows (a pickled table slice carries every buffer it is a view of: the ids handed back with
    each part kept the whole table's ids alive)."""
    import pickle

    import uimdata.executors.local as local

    batch = pa.table({"id": [f"r{i:06d}" for i in range(2000)], "text": [f"row {i} " * 50 for i in range(2000)]})
    whole = batch.get_total_buffer_size()
    monkeypatch.setattr(local, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(local, "CHUNK_BYTES", local._string_bytes(batch) // 10)
    sent = list(local._chunks(batch, local.CHUNK_BYTES))
    assert len(sent) >= 10 and all(len(pickle.dumps(c)) < whole / 5 for c in sent)
    assert pa.concat_tables(sent).equals(batch)
    parts = LocalExecutor(progress=False, workers=2).map(_WhichProcess(), [batch])
    assert all(p.get_total_buffer_size() < whole / 5 for p in parts)
    assert pa.concat_tables(parts).select(["id", "text"]).equals(batch)
