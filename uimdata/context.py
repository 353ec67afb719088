"""What a global detector sees: the run's artifacts, each read once and shared."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa

from uimdata.rundir import RunDir
from uimdata.stages.index import KnnGraph, read_graph


class ScanContext:
    def __init__(self, run: RunDir) -> None:
        self.run = run

    @cached_property
    def samples(self) -> pa.Table:
        return self.run.read_samples()

    @property
    def n(self) -> int:
        return self.samples.num_rows

    @cached_property
    def ids(self) -> pa.Array:
        return self.samples.column("id").combine_chunks()

    @cached_property
    def texts(self) -> list[str]:
        return self.samples.column("text").to_pylist()

    @cached_property
    def embeddings(self) -> np.ndarray:
        return self.run.read_embeddings()

    @cached_property
    def graph(self) -> KnnGraph:
        return read_graph(self.run, self.n)
