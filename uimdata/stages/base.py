"""The stage contract shared by every executor.

A :class:`Stage` turns one Arrow record batch into another: it declares the columns it
reads (``needs``) and the columns it adds (``adds``), loads heavy state once per worker in
:meth:`Stage.setup`, and its :meth:`Stage.process` is pure, so an executor may retry a batch
or run it on another worker. Stages never import an executor.

A :class:`GlobalStep` needs the whole corpus at once (a kNN graph, cleanlab over all
predictions). It reads artifacts of the run directory and writes one of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pyarrow as pa

from uimdata.errors import UimError

if TYPE_CHECKING:
    from uimdata.rundir import RunDir


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

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models or other heavy state; called once per worker before any batch."""

    def process(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    def check_input(self, schema: pa.Schema) -> None:
        missing = [c for c in self.needs if c not in schema.names]
        if missing:
            raise UimError(
                f"stage '{self.name}' cannot run",
                expected=f"columns {list(self.needs)}",
                got=f"columns {schema.names}",
                hint="run the stages that add them first",
            )


class GlobalStep:
    """A whole-corpus step that reads run artifacts and writes one artifact."""

    name: ClassVar[str] = "global"
    resources: ClassVar[Resources] = Resources()

    def run(self, run: RunDir) -> None:
        raise NotImplementedError


T = TypeVar("T")


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
