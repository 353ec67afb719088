"""The local executor: runs batch stages in this process, one batch at a time, with a progress bar;
a large stage that declares ``parallel`` runs in worker processes, one per core."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pyarrow as pa

from uimdata.executors.base import TimedExecutor
from uimdata.stages.base import Stage, local_map

T = TypeVar("T")

#: a ``parallel`` stage goes to worker processes when its rows hold about this many bytes of strings or more
#: (estimated from its first batch): about 4 s of rule checks on one core, against ~3 s to start the workers
#: and import the stage there, once (measured on 10,400 documents of 4,000 characters: ``corrupted``
#: 10.7 s in-process, 8.7 s on two workers started cold, 5.1 s warm; docs/scaling.md)
PARALLEL_MIN_BYTES = 16 << 20
#: in worker processes, each task is a slice of a batch holding at most this many bytes of strings
CHUNK_BYTES = 4 << 20


def _string_bytes(batch: pa.Table) -> int:
    return sum(col.nbytes for col in batch.columns if pa.types.is_string(col.type) or pa.types.is_large_string(col.type))


#: in a worker process: the stages it has set up, by the key the executor gave them (a few at most)
_READY: dict[str, Stage] = {}


def _setup_and_process(key: str, stage: Stage, part: pa.Table) -> pa.Table:
    """One task in a worker process: the stage arrives pickled; it is set up once per worker (``key``)."""
    ready = _READY.get(key)
    if ready is None:
        stage.setup()
        if len(_READY) >= 8:
            _READY.clear()
        ready = _READY[key] = stage
    return compact(ready.process(part))


def compact(table: pa.Table) -> pa.Table:
    """``table`` with each column as one array: what crosses to or from a worker process. Pickling a
    slice of a table sends every buffer it is a view of (a 4 MiB slice of a 400,000-row table went as
    48 MB, and the ids a worker handed back with its results kept the whole table's ids alive, 790 MB
    at 400,000 rows); an array pickles its own rows only. No copy when a column is one chunk already."""
    return pa.Table.from_arrays([c.combine_chunks() for c in table.columns], schema=table.schema)


def _chunks(part: pa.Table, max_bytes: int) -> Iterator[pa.Table]:
    """``part`` in consecutive slices of about ``max_bytes`` bytes of strings each (at least one row)."""
    n = max(1, min(part.num_rows, -(-_string_bytes(part) // max(max_bytes, 1))))
    bounds = [part.num_rows * i // n for i in range(n + 1)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield compact(part.slice(a, b - a))


class LocalExecutor(TimedExecutor):
    """Run stages on this machine. ``timings`` collects seconds and rows per stage. ``workers``: the
    processes a large ``parallel`` stage runs in (default: one per core; 1 = everything in this process)."""

    def __init__(self, progress: bool | None = None, workers: int | None = None, **kwargs: Any) -> None:
        super().__init__(progress=progress, **kwargs)
        if workers is None:
            from joblib import cpu_count  # the cores this process may use (affinity, container quotas)

            workers = cpu_count()
        self.workers = max(1, workers)

    def _in_workers(self, stage: Stage, first: pa.Table, total: int | None) -> bool:
        if not stage.parallel or self.workers < 2 or first.num_rows == 0:
            return False
        return _string_bytes(first) / first.num_rows * max(total or 0, first.num_rows) >= PARALLEL_MIN_BYTES

    def imap(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
             desc: str | None = None) -> Iterator[pa.Table]:
        """Apply ``stage.process`` to every batch, yielding the results in order as soon as each is ready
        (so a caller can persist it: a killed run keeps what it finished). A large ``parallel`` stage runs
        in worker processes, a few slices of a batch at a time (joblib), yielded in the same order: from
        the start when ``total`` rows at the first batch's size make it large, or from the batch at which
        the text seen so far makes it large when ``total`` is not known."""
        start = time.perf_counter()
        rows = 0
        parts = (batch.slice(i, stage.batch_size) for batch in batches
                 for i in range(0, max(batch.num_rows, 1), stage.batch_size))
        parts = (p for p in parts if p.num_rows)
        first = next(parts, None)
        with self.bar(desc or stage.name, total) as advance:
            if first is not None:
                for out in self._results(stage, itertools.chain([first], parts), self._in_workers(stage, first, total),
                                         switch=total is None):
                    yield out
                    rows += out.num_rows
                    advance(out.num_rows)
        self.record(desc or stage.name, time.perf_counter() - start, rows)

    def _results(self, stage: Stage, parts: Iterator[pa.Table], in_workers: bool, switch: bool) -> Iterator[pa.Table]:
        """The stage's results in order: in worker processes, or in this process until (``switch``) the
        text it has seen reaches :data:`PARALLEL_MIN_BYTES`, then the rest in worker processes."""
        if not in_workers:
            stage.setup()
            seen = 0
            for part in parts:
                yield stage.process(part)
                seen += _string_bytes(part)
                if switch and stage.parallel and self.workers > 1 and seen >= PARALLEL_MIN_BYTES:
                    break
            else:
                return
        from joblib import Parallel, delayed

        key = uuid.uuid4().hex
        yield from Parallel(n_jobs=self.workers, return_as="generator")(
            delayed(_setup_and_process)(key, stage, chunk) for part in parts for chunk in _chunks(part, CHUNK_BYTES))

    def map_tasks(self, fn: Callable[..., T], items: list, shared: dict[str, Any]) -> list[T]:
        """The parallel map global steps use for their shards (here: in this process, in order)."""
        return local_map(fn, items, shared)
