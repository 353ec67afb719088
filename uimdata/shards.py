"""The embedding shards of a run: ``RUN/embeddings/part-NNNNN.parquet`` (``id``, ``embedding``:
L2-normalised, stored as float32 or float16), rows in ``samples`` order.

:class:`EmbeddingShards` writes them in the scan's process from blocks of rows as they come (a given
embedding column as ingest's batches come back; the embed stage's output). Under Ray, a read task
writes its own shard where it runs (:func:`write_shard`) and the scan only takes note of it
(:meth:`EmbeddingShards.reserve`, :meth:`EmbeddingShards.adopt`), so that the embeddings never pass
through the driver. Every shard is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from uimdata.errors import UimError
from uimdata.memory import release_memory
from uimdata.rundir import RunDir, atomic_write_parquet
from uimdata.stages.embed import normalize_rows
from uimdata.stages.ingest import dimension_changed, fixed_list

#: rows a row group (and about a shard) of ``RUN/embeddings/``
SHARD_ROWS = 100_000
DTYPES = ("float32", "float16")


def _row_groups(ids: pa.Array, emb: np.ndarray, dtype: str, normalize: bool) -> Iterator[pa.Table]:
    """``(id, embedding)`` tables of at most :data:`SHARD_ROWS` rows of ``emb`` (``normalize``: each row
    L2-normalised here), stored as ``dtype``."""
    for s in range(0, len(emb), SHARD_ROWS):
        block = normalize_rows(emb[s:s + SHARD_ROWS]) if normalize else np.asarray(emb[s:s + SHARD_ROWS], np.float32)
        yield pa.table({"id": ids.slice(s, len(block)), "embedding": fixed_list(block.astype(dtype, copy=False))})


def embedding_chunks(part: pa.Table) -> Iterator[tuple[pa.Array, np.ndarray]]:
    """``(ids, rows)`` of an ingest batch's ``embedding`` column, one Arrow chunk at a time."""
    col = part.column("embedding")
    dim = col.type.list_size
    ids = part.column("id").combine_chunks()
    at = 0
    for chunk in col.chunks:
        yield ids.slice(at, len(chunk)), chunk.flatten().to_numpy(zero_copy_only=False).reshape(len(chunk), dim)
        at += len(chunk)


def write_shard(path: str | os.PathLike[str], part: pa.Table, dtype: str) -> tuple[int, int]:
    """One whole shard at ``path`` from an ingest batch's ``id`` and ``embedding`` columns, normalised and
    stored as :class:`EmbeddingShards` stores them; ``(rows, dimension)``. What a Ray read task calls."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = None
    try:
        for ids, emb in embedding_chunks(part):
            for table in _row_groups(ids, emb, dtype, normalize=True):
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    dim = part.column("embedding").type.list_size
    if writer is None:  # no rows: no shard
        return 0, dim
    os.replace(tmp, path)
    return part.num_rows, dim


class EmbeddingShards:
    """Writes ``RUN/embeddings/part-NNNNN.parquet`` from blocks of rows as they come, each block a row group
    of the open shard, :data:`SHARD_ROWS` rows or a little more a shard: a given embedding column goes
    from ingest's batches straight to disk, and the scan holds one block at a time instead of the column
    and then the matrix. A shard is written under a temporary name and renamed into place when it is
    complete. Shards written elsewhere (a Ray read task: :func:`write_shard`) join with
    :meth:`reserve` and :meth:`adopt`."""

    def __init__(self, run: RunDir, dtype: str = "float32") -> None:
        if dtype not in DTYPES:
            raise UimError("--embedding-dtype", expected="float32 or float16", got=repr(dtype))
        self.run, self.dtype = run, dtype
        self.rows, self.dim = 0, None
        #: the shards written or reserved so far, in row order (the last one still open while ``_writer`` is)
        self.shards: list[Path] = []
        self._writer = None
        self._tmp: Path | None = None
        self._held = 0
        self._named = 0  # shard names given so far (a reserved shard that came back empty keeps its number)

    def _next_path(self) -> Path:
        path = self.run.embeddings_dir / f"part-{self._named:05d}.parquet"
        self._named += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, ids: pa.Array, emb: np.ndarray, normalize: bool = True) -> None:
        """Rows ``emb`` with their ``ids`` (``normalize``: L2-normalised here; the embed stage's come
        normalised), at most SHARD_ROWS rows a row group."""
        import pyarrow.parquet as pq

        for part in _row_groups(ids, emb, self.dtype, normalize):
            if self._writer is None:
                path = self._next_path()
                self._tmp = path.with_name(f".{path.name}.tmp")
                self._writer = pq.ParquetWriter(self._tmp, part.schema, compression="zstd")
                self.shards.append(path)
            self._writer.write_table(part)
            self._held += part.num_rows
            self.rows += part.num_rows
            if self._held >= SHARD_ROWS:
                self.flush()

    def take(self, part: pa.Table, source: str) -> pa.Table:
        """An ingest batch without its ``embedding`` column, which goes to the shards (the dimension checked
        against the first batch's)."""
        if "embedding" not in part.column_names or part.num_rows == 0:
            return part
        self._check(part.column("embedding").type.list_size, source, part.column("row")[0].as_py())
        for ids, emb in embedding_chunks(part):
            self.add(ids, emb)
        return part.drop_columns(["embedding"])

    def _check(self, dim: int, source: str, row: int) -> None:
        if self.dim is None:
            self.dim = dim
        elif dim != self.dim:
            raise dimension_changed(source, row, self.dim, {self.dim, dim})

    def reserve(self) -> Path:
        """The path of the next shard, for a writer elsewhere (:func:`write_shard` in a Ray task); reserved
        in row order, its rows counted by :meth:`adopt` once it is written."""
        self.flush()
        path = self._next_path()
        self.shards.append(path)
        return path

    def adopt(self, path: Path, rows: int, dim: int, source: str, row: int) -> None:
        """Take note of the shard a writer elsewhere wrote at ``path`` (reserved with :meth:`reserve`):
        ``rows`` rows of dimension ``dim``, the first of them at corpus row ``row`` of ``source`` (named by
        the error when the dimension differs from the shards' before it)."""
        if not rows:
            self.shards.remove(path)
            return
        self._check(dim, source, row)
        self.rows += rows

    def flush(self) -> None:
        """Close the open shard and rename it into place."""
        if self._writer is None:
            return
        self._writer.close()
        os.replace(self._tmp, self.shards[-1])
        self._writer, self._held = None, 0
        release_memory()  # the shard's buffers, before the next batches arrive

    def set_ids(self, ids: pa.ChunkedArray) -> None:
        """Replace the shards' ids, in row order (after ``dedupe_ids`` renamed repeats)."""
        import pyarrow.parquet as pq

        at = 0
        for path in self.shards:
            part = pq.read_table(path)
            part = part.set_column(0, "id", ids.slice(at, part.num_rows).combine_chunks())
            atomic_write_parquet(part, path)
            at += part.num_rows
