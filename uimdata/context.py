"""What a global detector sees: the run's artifacts, each read once and shared."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa

from uimdata.rundir import RunDir
from uimdata.stages.index import KnnGraph, read_graph


class ScanContext:
    def __init__(self, run: RunDir, label_model: str = "ensemble", device: str = "auto",
                 reference: np.ndarray | None = None, pmap=None) -> None:  # noqa: ANN001
        self.run = run
        #: the executor's parallel map for sharded work (k-means assignment); None = in-process
        self.pmap = pmap
        self.label_model = label_model
        self.device = device
        #: L2-normalised embeddings of a reference set (``uim scan --reference``), or None
        self.reference = reference

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

    @cached_property
    def cluster_ids(self) -> np.ndarray:
        """Spherical FAISS k-means over the embeddings, k ~ sqrt(N / 2) (>= 39 rows per centroid), trained
        on a sample and assigned in shards."""
        from uimdata.detectors.long_tail import kmeans_assign

        k = int(np.clip(round(np.sqrt(self.n / 2)), 1, 4096))
        k = max(1, min(k, self.n // 39))
        return kmeans_assign(self.embeddings, k, pmap=self.pmap) if k > 1 else np.zeros(self.n, np.int64)

    @cached_property
    def classes(self) -> list[str]:
        """Sorted distinct non-null labels."""
        if "label" not in self.samples.column_names:
            return []
        return sorted({x for x in self.samples.column("label").to_pylist() if x is not None})

    @cached_property
    def label_codes(self) -> np.ndarray:
        """Class index of each row, -1 where the label is null."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index.get(x, -1) if x is not None else -1
                         for x in self.samples.column("label").to_pylist()], np.int64)

    @cached_property
    def pred_probs(self) -> np.ndarray:
        """Out-of-fold class probabilities (a global step): computed once, kept as ``pred_probs.parquet``."""
        from uimdata.label_model import oof_pred_probs
        from uimdata.rundir import atomic_write_parquet

        g = self.graph
        probs = oof_pred_probs(self.embeddings, self.label_codes, len(self.classes), g.rows, g.cos,
                               method=self.label_model, device=self.device)
        table = pa.table({"id": self.ids, "pred_probs": pa.FixedSizeListArray.from_arrays(
            pa.array(probs.reshape(-1), pa.float32()), len(self.classes))})
        table = table.replace_schema_metadata({"classes": "\x1f".join(self.classes), "model": self.label_model})
        atomic_write_parquet(table, self.run.path / "pred_probs.parquet")
        return probs
