"""The Ray Data executor: the same stages as the local executor, run as ``map_batches`` over
actor pools (a stage's ``setup()`` runs once per actor; ``num_cpus`` / ``num_gpus`` come from the
stage's declared resources). Global steps run on the driver; their shards (the IVF-PQ kNN search of
large corpora) run as Ray tasks through ``map_tasks``.

Install with ``pip install 'uimdata[ray]'``; ``uim scan --engine ray [--address auto|ray://HOST:PORT]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pyarrow as pa

from uimdata.errors import UimError
from uimdata.executors.base import TimedExecutor
from uimdata.stages.base import Stage

T = TypeVar("T")


class _StageActor:
    """One actor of a stage's pool: loads the stage's state once, then processes batches."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.stage.setup()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.stage.process(batch)


def _call_shared(fn: Callable[..., T], item: Any, shared: dict[str, Any]) -> T:
    return fn(item, **shared)


def _read_and_process(stage: Stage, task: Any, shard: str | None = None,
                      dtype: str = "float32") -> tuple[pa.Table, Any]:
    """One read task on a worker: its rows read there (``stages.ingest.read_task``), through the stage.
    With a ``shard`` path, a given embedding column is written there (``shards.write_shard``: normalised,
    stored as ``dtype``) and the task returns its rows and ``(rows, dimension)``: the embeddings never
    reach the driver. Without one, the rows and the embedding column come back as two objects, so that the
    driver can let go of the embeddings once it has written them (a table taken zero-copy from Ray's object
    store keeps the whole object it came in alive)."""
    from uimdata.stages.ingest import read_task

    stage.setup()
    parts = [stage.process(b) for b in read_task(task)]
    out = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    if "embedding" not in out.column_names:
        return out, None
    if shard is not None:
        from uimdata.shards import write_shard

        return out.drop_columns(["embedding"]), write_shard(shard, out, dtype)
    return out.drop_columns(["embedding"]), out.select(["embedding"])


class RayExecutor(TimedExecutor):
    """Batch stages on Ray Data actor pools; shards of global steps as Ray tasks."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, progress: bool | None = None,
                 max_actors: int | None = None) -> None:
        super().__init__(progress=progress)
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError:
            raise UimError("--engine ray needs Ray Data", expected="ray[data] installed", got="no ray module",
                           hint="pip install 'uimdata[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"num_cpus": num_cpus}
            ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows come back in corpus order
        ctx.enable_progress_bars = False
        self.max_actors = max_actors

    def _pool_size(self, stage: Stage) -> int:
        cpus = self.ray.cluster_resources().get("CPU", 1)
        size = int(cpus // max(stage.resources.cpus, 0.01))
        if stage.resources.gpus:
            size = min(size, int(self.ray.cluster_resources().get("GPU", 0) // stage.resources.gpus))
        return max(1, min(size, self.max_actors or size))

    def map_tasks(self, fn: Callable[..., T], items: list, shared: dict[str, Any]) -> list[T]:
        """Shards of a global step as Ray tasks (one CPU each; ``fn`` must be picklable); ``shared`` (e.g.
        the embedding matrix and a serialised index) goes into the object store once and reaches every
        task zero-copy."""
        ref = self.ray.put(shared)
        task = self.ray.remote(num_cpus=1)(_call_shared)
        return self.ray.get([task.remote(fn, item, ref) for item in items])

    #: ``map_tasks`` runs its calls in other processes: a global step hands them what they can read
    #: themselves (``rundir.EmbeddingRows``) rather than a matrix of this process
    map_tasks.remote = True  # type: ignore[attr-defined]

    def ingest(self, stage: Stage, reader: Any, total: int | None = None,
               desc: str | None = None, sink: Any = None) -> Iterator[pa.Table]:
        """Parquet corpora are read on the workers: one Ray task per run of row groups
        (``CorpusReader.read_tasks``: the driver reads only the footers), at most ``2 x CPUs`` tasks in
        flight, results taken in corpus order, so that the driver holds a bounded number of batches
        whatever the corpus's size. With a ``sink`` (``shards.EmbeddingShards``), each task writes its
        rows' given embeddings as a shard of its own where it runs, and the driver only takes note of it.
        Other formats are read on the driver and handed to ``imap``."""
        tasks = reader.read_tasks()
        if tasks is None:
            yield from self.imap(stage, reader.batches(), total, desc)
            return
        start = time.perf_counter()
        rows = 0
        remote = self.ray.remote(num_cpus=stage.resources.cpus, num_returns=2)(_read_and_process)
        window = max(2, 2 * int(self.ray.cluster_resources().get("CPU", 1)))
        stage_ref = self.ray.put(stage)
        paths: list = []

        def submit(task: Any) -> Any:
            path = sink.reserve() if sink is not None and task.has_embedding else None
            paths.append(path)
            return remote.remote(stage_ref, task, None if path is None else str(path),
                                 sink.dtype if sink is not None else "float32")

        with self.bar(desc or stage.name, total) as advance:
            pending = [submit(t) for t in tasks[:window]]
            for i in range(len(tasks)):
                try:
                    out, emb = self.ray.get(pending.pop(0))
                except self.ray.exceptions.RayTaskError as e:  # bad input: the worker's one-line error
                    if isinstance(getattr(e, "cause", None), UimError):
                        raise e.cause from None
                    raise
                if isinstance(emb, tuple):  # written where the task ran
                    sink.adopt(paths[i], *emb, tasks[i].path, int(out.column("row")[0].as_py()) if out.num_rows else 0)
                elif emb is not None:  # rejoined for the caller, which takes the column off
                    out = out.append_column("embedding", emb.column(0))
                    del emb
                if i + window < len(tasks):
                    pending.append(submit(tasks[i + window]))
                rows += out.num_rows
                advance(out.num_rows)
                yield out
        self.record(desc or stage.name, time.perf_counter() - start, rows)

    def imap(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
             desc: str | None = None) -> Iterator[pa.Table]:
        import ray.data
        from ray.data import ActorPoolStrategy

        start = time.perf_counter()
        tables = [b for b in batches if b.num_rows]
        rows = 0
        with self.bar(desc or stage.name, total) as advance:
            if tables:
                ds = ray.data.from_arrow(tables)
                ds = ds.map_batches(_StageActor, fn_constructor_args=(stage,), batch_format="pyarrow",
                                    batch_size=stage.batch_size, num_cpus=stage.resources.cpus,
                                    num_gpus=stage.resources.gpus or None,
                                    compute=ActorPoolStrategy(min_size=1, max_size=self._pool_size(stage)))
                for out in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                    rows += out.num_rows
                    advance(out.num_rows)
                    yield out
        self.record(desc or stage.name, time.perf_counter() - start, rows)
