"""The local executor: runs batch stages in-process, one batch at a time, with a progress bar."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from uimdata.stages.base import Stage, local_map

T = TypeVar("T")

#: whether an executor created without an explicit ``progress`` shows bars (``progress_bars(False)``
#: turns them off for everything it runs, e.g. the embedding of a downstream set in ``uim link``)
SHOW_PROGRESS: ContextVar[bool] = ContextVar("uimdata_show_progress", default=True)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """Show (or hide) the progress bars of every executor created inside the block."""
    token = SHOW_PROGRESS.set(enabled)
    try:
        yield
    finally:
        SHOW_PROGRESS.reset(token)


def peak_rss_mb() -> float:
    """This process' peak resident memory (VmHWM; ru_maxrss would include a parent's before exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="cyan")


class LocalExecutor:
    """Run stages in this process. ``timings`` collects seconds and rows per stage."""

    def __init__(self, progress: bool | None = None, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.show = SHOW_PROGRESS.get() if progress is None else progress
        self.timings: dict[str, dict[str, float]] = {}

    @contextmanager
    def _bar(self, desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
        if not self.show:
            yield lambda n: None
            return
        with Progress(TextColumn("[bold]{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                      RateColumn(), TimeElapsedColumn(), console=self.console, transient=False) as prog:
            task = prog.add_task(desc, total=total)
            yield lambda n: prog.advance(task, n)

    def record(self, name: str, seconds: float, rows: int) -> None:
        """Add a stage's seconds and rows; ``peak_rss_mb`` is the process' peak RSS when it ended."""
        t = self.timings.setdefault(name, {"seconds": 0.0, "rows": 0})
        t["seconds"] += seconds
        t["rows"] += rows
        t["peak_rss_mb"] = peak_rss_mb()

    def imap(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
             desc: str | None = None) -> Iterator[pa.Table]:
        """Apply ``stage.process`` to every batch, yielding each result as soon as it is ready (so a
        caller can persist it: a killed run keeps what it finished)."""
        start = time.perf_counter()
        stage.setup()
        rows = 0
        with self._bar(desc or stage.name, total) as advance:
            for batch in batches:
                for i in range(0, max(batch.num_rows, 1), stage.batch_size):
                    part = batch.slice(i, stage.batch_size)
                    if part.num_rows == 0:
                        continue
                    yield stage.process(part)
                    rows += part.num_rows
                    advance(part.num_rows)
        self.record(desc or stage.name, time.perf_counter() - start, rows)

    def map(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
            desc: str | None = None) -> list[pa.Table]:
        """Apply ``stage.process`` to every batch; returns the processed batches in order."""
        return list(self.imap(stage, batches, total, desc))

    def map_tasks(self, fn: Callable[..., T], items: list, shared: dict) -> list[T]:
        """The parallel map global steps use for their shards (here: in this process, in order)."""
        return local_map(fn, items, shared)

    def run_global(self, name: str, fn: Callable[[], T], rows: int) -> T:
        """Run one whole-corpus step, timed, with a bar that completes when it returns."""
        start = time.perf_counter()
        with self._bar(name, rows) as advance:
            result = fn()
            advance(rows)
        self.record(name, time.perf_counter() - start, rows)
        return result
