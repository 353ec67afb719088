"""What a global detector sees: the run's artifacts, each read once and shared.

A :class:`ScanContext` reads ``samples``, the embeddings and the kNN graph of a run directory on
first use, and computes once what detectors share (the k-means clustering) or the scan saves
afterwards (the out-of-fold class probabilities: :meth:`ScanContext.write_pred_probs`). :meth:`ScanContext.from_arrays` builds one from arrays in memory, without a run
directory (the graph computed on the spot), so a detector can be run on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from uimdata.rundir import RunDir, atomic_write_parquet
from uimdata.stages.base import PMap
from uimdata.stages.embed import normalize_rows
from uimdata.stages.index import KnnGraph, knn_graph, read_graph
from uimdata.stages.ingest import text_hash
from uimdata.stages.kmeans import default_k, kmeans_assign

PRED_PROBS = "pred_probs.parquet"


class ScanContext:
    def __init__(self, run: RunDir | None, label_model: str = "ensemble", device: str = "auto",
                 reference: np.ndarray | None = None, pmap: PMap | None = None,
                 samples: pa.Table | None = None) -> None:
        #: the run directory the artifacts are read from (None: a context built by :meth:`from_arrays`)
        self.run = run
        if samples is not None:  # the run's samples, already in memory (the scan's): not read a second time
            self.__dict__["samples"] = samples
        #: the executor's parallel map for sharded work (k-means assignment); None = in-process
        self.pmap = pmap
        self.label_model = label_model
        self.device = device
        #: L2-normalised embeddings of a reference set (``uim scan --reference``), or None
        self.reference = reference
        self._pred_probs: np.ndarray | None = None
        #: the flags of the detectors that already ran in this scan (issue -> bool per row)
        self.flagged_by: dict[str, np.ndarray] = {}

    @classmethod
    def from_arrays(cls, ids: Sequence[str], texts: Sequence[str], embeddings: np.ndarray,
                    labels: Sequence[str | None] | None = None, *, k: int = 10, exact_max: int = 20000,
                    label_model: str = "ensemble", device: str = "auto", reference: np.ndarray | None = None,
                    pmap: PMap | None = None) -> ScanContext:
        """A context over rows held in memory, as a scan of them would see it: ``samples`` with ``id``,
        ``text``, ``text_hash``, ``n_chars``, ``row`` (and ``label`` when given), the embeddings
        L2-normalised, and the kNN graph (``k`` neighbours, exact up to ``exact_max`` rows) computed here.
        Nothing is written; there is no run directory."""
        texts = ["" if t is None else str(t) for t in texts]
        cols = {"id": pa.array([str(x) for x in ids], pa.string()), "text": pa.array(texts, pa.string()),
                "text_hash": pa.array([text_hash(t) for t in texts], pa.string()),
                "n_chars": pa.array([len(t) for t in texts], pa.int64()),
                "row": pa.array(np.arange(len(texts)), pa.int64())}
        if labels is not None:
            cols["label"] = pa.array([None if v is None else str(v) for v in labels], pa.string())
        samples = pa.table(cols)
        emb = normalize_rows(embeddings)
        if len(emb) != samples.num_rows:
            raise ValueError(f"from_arrays: {len(emb)} embeddings for {samples.num_rows} rows")
        ctx = cls(None, label_model=label_model, device=device, reference=reference, pmap=pmap)
        # the cached properties' values, given instead of read from a run directory
        ctx.__dict__.update(samples=samples, embeddings=emb,
                            graph=knn_graph(emb, k, exact_max, device=device, pmap=pmap))
        return ctx

    def _run(self) -> RunDir:
        if self.run is None:
            raise ValueError("this ScanContext has no run directory")
        return self.run

    def flagged(self, issue: str) -> np.ndarray | None:
        """The rows ``issue``'s detector flagged, when it ran before in this scan; else None."""
        return self.flagged_by.get(issue)

    @cached_property
    def samples(self) -> pa.Table:
        return self._run().read_samples()

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
        return self._run().read_embeddings()

    @cached_property
    def graph(self) -> KnnGraph:
        return read_graph(self._run(), self.n)

    @cached_property
    def cluster_ids(self) -> np.ndarray:
        """Spherical FAISS k-means over the embeddings, k ~ sqrt(N / 2) (>= 39 rows per centroid), trained
        on a sample and assigned in shards."""
        k = default_k(self.n)
        return (kmeans_assign(self.embeddings, k, pmap=self.pmap, rows=self.embedding_rows) if k > 1
                else np.zeros(self.n, np.int64))

    @property
    def embedding_rows(self) -> Any:
        """The run's embeddings as rows a worker reads itself (``rundir.EmbeddingRows``), for shards of a
        global step that run elsewhere; None without a run directory."""
        from uimdata.rundir import EmbeddingRows

        return None if self.run is None else EmbeddingRows(self.run.embeddings_dir)

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

    @property
    def pred_probs(self) -> np.ndarray:
        """Out-of-fold class probabilities (``label_model``), computed once, in memory, on first use; the
        scan saves them with :meth:`write_pred_probs`."""
        if self._pred_probs is None:
            from uimdata.label_model import oof_pred_probs

            g = self.graph
            # the matrix read once the label model needs it, after its word features are built; the joint
            # model reads the rows each fold needs from RUN/embeddings instead, when the matrix is not held
            reader = self.embedding_rows if "embeddings" not in self.__dict__ else None
            self._pred_probs = oof_pred_probs(lambda: self.embeddings, self.label_codes, len(self.classes),
                                              g.rows, g.cos, method=self.label_model, device=self.device,
                                              texts=self.texts, reader=reader)
        return self._pred_probs

    def drop_embeddings(self) -> None:
        """Let go of the embedding matrix (read again from the run directory when asked for): the scan
        drops it after each detector, so that a step that does not need it whole (the label model, which
        reads the rows each fold needs, store) does not run beside it. A context without a run directory keeps it."""
        if self.run is not None:
            self.__dict__.pop("embeddings", None)

    def release(self) -> None:
        """Let go of what the detectors read and computed (the embedding matrix, the kNN graph, the
        texts, the clusters, the class probabilities, which :meth:`write_pred_probs` must have written
        already), so that the steps after the detectors (flags, store) do not hold it; each is read
        again if asked for (a context without a run directory keeps what it was given). ``samples``
        stays."""
        self.drop_embeddings()
        for name in ("graph", "texts", "cluster_ids") if self.run is not None else ("texts",):
            self.__dict__.pop(name, None)
        self._pred_probs = None

    def write_pred_probs(self) -> bool:
        """Write ``pred_probs.parquet`` (``id``, ``pred_probs``; the class names and the label model in the
        schema metadata) when a detector used :attr:`pred_probs`; returns whether it did."""
        if self._pred_probs is None:  # never computed: no detector needed them
            return False
        table = pa.table({"id": self.ids, "pred_probs": pa.FixedSizeListArray.from_arrays(
            pa.array(self._pred_probs.reshape(-1), pa.float32()), len(self.classes))})
        table = table.replace_schema_metadata({"classes": "\x1f".join(self.classes), "model": self.label_model})
        atomic_write_parquet(table, self._run().path / PRED_PROBS)
        return True
