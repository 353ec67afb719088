"""The local executor: runs batch stages in-process, one batch at a time, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pyarrow as pa

from uimdata.executors.base import TimedExecutor
from uimdata.stages.base import Stage, local_map

T = TypeVar("T")


class LocalExecutor(TimedExecutor):
    """Run stages in this process. ``timings`` collects seconds and rows per stage."""

    def imap(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
             desc: str | None = None) -> Iterator[pa.Table]:
        """Apply ``stage.process`` to every batch, yielding each result as soon as it is ready (so a
        caller can persist it: a killed run keeps what it finished)."""
        start = time.perf_counter()
        stage.setup()
        rows = 0
        with self.bar(desc or stage.name, total) as advance:
            for batch in batches:
                for i in range(0, max(batch.num_rows, 1), stage.batch_size):
                    part = batch.slice(i, stage.batch_size)
                    if part.num_rows == 0:
                        continue
                    yield stage.process(part)
                    rows += part.num_rows
                    advance(part.num_rows)
        self.record(desc or stage.name, time.perf_counter() - start, rows)

    def map_tasks(self, fn: Callable[..., T], items: list, shared: dict[str, Any]) -> list[T]:
        """The parallel map global steps use for their shards (here: in this process, in order)."""
        return local_map(fn, items, shared)
