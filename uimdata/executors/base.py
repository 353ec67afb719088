"""The executor contract: what a scan asks of an engine, and the progress bars and timing records
every engine shares.

:class:`Executor` is the protocol the scan is written against; :class:`~uimdata.executors.local.LocalExecutor`
and :class:`~uimdata.executors.ray.RayExecutor` are siblings that both implement it on top of
:class:`TimedExecutor` (bars, timings, the list form of ``imap`` and the driver-side global step).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

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

from uimdata.memory import release_memory
from uimdata.stages.base import Stage

if TYPE_CHECKING:
    from uimdata.stages.ingest import CorpusReader

T = TypeVar("T")

#: whether an executor created without an explicit ``progress`` shows bars (``progress_bars(False)``
#: turns them off for everything it runs, e.g. the embedding of a downstream set in ``uim link``)
SHOW_PROGRESS: ContextVar[bool] = ContextVar("uimdata_show_progress", default=True)


@runtime_checkable
class Executor(Protocol):
    """What the scan needs from an engine. ``timings`` maps a step's name to its seconds, rows and
    the process' peak RSS (MB) when it ended."""

    timings: dict[str, dict[str, float]]

    def imap(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
             desc: str | None = None) -> Iterator[pa.Table]:
        """``stage.process`` over every batch, each result yielded as soon as it is ready, in order."""
        ...

    def map(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
            desc: str | None = None) -> list[pa.Table]:
        """``imap`` collected into a list."""
        ...

    def ingest(self, stage: Stage, reader: CorpusReader, total: int | None = None,
               desc: str | None = None, sink: Any = None) -> Iterator[pa.Table]:
        """The ingest ``stage`` over the corpus ``reader`` reads, results in corpus order: as ``imap`` over
        ``reader.batches()``, or with the files read where the stage runs (``reader.read_tasks()``).
        ``sink`` (``shards.EmbeddingShards``): where an engine whose workers read the files may have them
        write a given embedding column themselves; a batch that still has the column goes to the caller."""
        ...

    def run_global(self, name: str, fn: Callable[[], T], rows: int) -> T:
        """One whole-corpus step (``fn``), timed as ``name`` over ``rows`` rows."""
        ...

    def map_tasks(self, fn: Callable[..., T], items: list, shared: dict[str, Any]) -> list[T]:
        """The parallel map a global step's shards run through: ``[fn(item, **shared) for item in items]``
        (a :class:`~uimdata.stages.base.PMap`)."""
        ...

    def record(self, name: str, seconds: float, rows: int) -> None:
        """Add seconds and rows to step ``name``'s timing."""
        ...


@contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """Show (or hide) the progress bars of every executor created inside the block."""
    token = SHOW_PROGRESS.set(enabled)
    try:
        yield
    finally:
        SHOW_PROGRESS.reset(token)


def peak_rss_mb() -> float:
    """This process' peak resident memory since it started or since the last :func:`reset_peak_rss`
    (VmHWM; ru_maxrss would include a parent's before exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak_rss() -> bool:
    """Start this process' peak resident memory afresh from what it holds now (Linux: ``/proc/self/clear_refs``
    ``5`` resets VmHWM), so that the next step's peak is its own and not an earlier step's. False where
    that cannot be done (no procfs, no permission): peaks then stay the process' peaks so far."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="cyan")


class TimedExecutor:
    """What every engine shares: a progress bar per step, ``timings``, ``map`` as ``list(imap)`` and
    global steps run in this (the driver's) process. An engine adds ``imap`` and ``map_tasks``."""

    def __init__(self, progress: bool | None = None, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.show = SHOW_PROGRESS.get() if progress is None else progress
        self.timings: dict[str, dict[str, float]] = {}
        #: the process' peak RSS (MB) over every step recorded so far (``peak_rss_mb`` of the last step)
        self.peak_rss_mb = 0.0

    @contextmanager
    def bar(self, desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A progress bar for one step; yields ``advance(n_rows)`` (a no-op when bars are off)."""
        if not self.show:
            yield lambda n: None
            return
        with Progress(TextColumn("[bold]{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                      RateColumn(), TimeElapsedColumn(), console=self.console, transient=False) as prog:
            task = prog.add_task(desc, total=total)
            yield lambda n: prog.advance(task, n)

    def record(self, name: str, seconds: float, rows: int) -> None:
        """Add a step's seconds and rows. ``peak_rss_mb``: the process' peak RSS (MB) when it ended;
        ``step_peak_rss_mb``: the peak while it ran (since the step before it was recorded), so that the
        step that needs the memory is the one that shows it."""
        t = self.timings.setdefault(name, {"seconds": 0.0, "rows": 0})
        t["seconds"] += seconds
        t["rows"] += rows
        step_peak = peak_rss_mb()
        self.peak_rss_mb = max(self.peak_rss_mb, step_peak)
        t["peak_rss_mb"] = self.peak_rss_mb
        t["step_peak_rss_mb"] = max(t.get("step_peak_rss_mb", 0.0), step_peak)
        release_memory()
        reset_peak_rss()  # the next step's peak starts from what this process holds now

    def share_step(self, name: str, shares: dict[str, float]) -> None:
        """Replace the recorded step ``name`` (one pass that did the work of several steps) by the steps
        of ``shares``, each with the pass's seconds in proportion to its share (e.g. the seconds it
        spent in the pass), its rows and its peaks."""
        step = self.timings.pop(name, None)
        if step is None:
            return
        total = sum(shares.values())
        for part, share in shares.items():
            t = self.timings.setdefault(part, {"seconds": 0.0, "rows": 0})
            t["seconds"] += step["seconds"] * (share / total if total > 0 else 1.0 / len(shares))
            t["rows"] += step["rows"]
            t["peak_rss_mb"] = step["peak_rss_mb"]
            t["step_peak_rss_mb"] = max(t.get("step_peak_rss_mb", 0.0), step["step_peak_rss_mb"])

    def imap(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
             desc: str | None = None) -> Iterator[pa.Table]:
        raise NotImplementedError

    def map(self, stage: Stage, batches: Iterable[pa.Table], total: int | None = None,
            desc: str | None = None) -> list[pa.Table]:
        """Apply ``stage.process`` to every batch; returns the processed batches in order."""
        return list(self.imap(stage, batches, total, desc))

    def ingest(self, stage: Stage, reader: CorpusReader, total: int | None = None,
               desc: str | None = None, sink: Any = None) -> Iterator[pa.Table]:  # noqa: ARG002
        """The ingest stage over the batches this process reads (an engine with workers may read there, and
        have them write the embeddings to ``sink``); the batches keep their embedding column."""
        return self.imap(stage, reader.batches(), total, desc)

    def run_global(self, name: str, fn: Callable[[], T], rows: int) -> T:
        """Run one whole-corpus step in this process, timed, with a bar that completes when it returns."""
        start = time.perf_counter()
        with self.bar(name, rows) as advance:
            result = fn()
            advance(rows)
        self.record(name, time.perf_counter() - start, rows)
        return result
