"""The stage contract shared by every executor.

A :class:`Stage` turns one Arrow record batch into another: it declares the columns it
reads (``needs``) and the columns it adds (``adds``), loads heavy state once per worker in
:meth:`Stage.setup`, and its :meth:`Stage.process` is pure, so an executor may retry a batch
or run it on another worker. Stages never import an executor. :func:`check_pipeline` holds a
sequence of stages to their declarations before any of them runs.

A :class:`GlobalStep` needs the whole corpus at once (a kNN graph, cleanlab over all
predictions). It reads artifacts of the run directory and writes one of its own; its sharded
parts go through a :class:`PMap`, the parallel map an executor provides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import pyarrow as pa

from uimdata.errors import UimError

if TYPE_CHECKING:
    from uimdata.rundir import RunDir

T = TypeVar("T")


class PMap(Protocol):
    """A parallel map over a global step's shards: ``pmap(fn, items, shared)`` returns
    ``[fn(item, **shared) for item in items]`` in order, wherever the calls run (an executor's
    ``map_tasks``; :func:`local_map` in this process)."""

    def __call__(self, fn: Callable[..., T], items: list, shared: dict[str, Any], /) -> list[T]: ...


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs; executors map this onto their scheduler."""

    cpus: float = 1.0
    gpus: float = 0.0


class Stage:
    """A batch stage: ``process(batch) -> batch`` with the ``adds`` columns appended."""

    name: ClassVar[str] = "stage"
    needs: ClassVar[tuple[str, ...]] = ()
    adds: ClassVar[tuple[str, ...]] = ()
    resources: ClassVar[Resources] = Resources()
    batch_size: ClassVar[int] = 4096
    #: ``process`` is CPU-bound Python over the rows (no model, no threads of its own): the local executor
    #: splits a large batch over worker processes, one per core (``LocalExecutor.workers``)
    parallel: ClassVar[bool] = False

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models or other heavy state; called once per worker before any batch."""

    def process(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError


def check_pipeline(stages: Iterable[Stage], given: Iterable[str] = ()) -> None:
    """Fail, before any stage runs, when a stage ``needs`` a column that neither ``given`` (the input's
    columns) nor the ``adds`` of a stage before it provides: a one-line :class:`UimError`."""
    have = list(given)
    for stage in stages:
        missing = [c for c in stage.needs if c not in have]
        if missing:
            raise UimError(f"stage '{stage.name}' needs column(s) {missing} that no earlier stage adds",
                           expected=f"columns {list(stage.needs)}", got=f"columns {have}",
                           hint="run the stages that add them first")
        have += [c for c in stage.adds if c not in have]


class GlobalStep:
    """A whole-corpus step that reads run artifacts and writes one artifact."""

    name: ClassVar[str] = "global"

    def run(self, run: RunDir, pmap: PMap | None = None) -> None:
        """Read ``run``'s artifacts, write this step's; ``pmap`` runs its shards (None: in this process)."""
        raise NotImplementedError


def local_map(fn: Callable[..., T], items: list, shared: dict[str, Any]) -> list[T]:
    """The parallel map of a global step's shards, run in this process, in order: what a step uses
    when no executor hands it one (``RayExecutor.map_tasks`` runs the same calls as Ray tasks)."""
    return [fn(item, **shared) for item in items]


def cpu_map(fn: Callable[..., T], parts: list, **kwargs: Any) -> list[T]:
    """``fn(part, **kwargs)`` for every part, in order, in one worker process per core (joblib) when
    there are two parts or more and more than one core; in this process otherwise. For Python-bound
    work inside a global step (the outlier detector's tokenising): an executor's ``map_tasks`` spreads
    shards over a cluster, this uses the cores of the machine the step runs on."""
    import os

    cores = os.cpu_count() or 1
    if len(parts) < 2 or cores < 2:
        return [fn(p, **kwargs) for p in parts]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=min(len(parts), cores))(delayed(fn)(p, **kwargs) for p in parts)
