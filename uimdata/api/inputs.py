"""Input adapters: whatever a notebook hands the API (a path, a polars / pandas frame, an Arrow table, a
``datasets.Dataset``, a list of dicts, a dict of columns, a numpy embedding matrix) as something the
readers read: the path itself, or the table written to a parquet file. Errors that would quote that
temporary file name the in-memory object instead."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from uimdata.errors import UimError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

#: anything :func:`uimdata.scan` reads: a path (every format ``uim scan`` reads), a polars or pandas
#: DataFrame, a pyarrow Table, a ``datasets.Dataset``, a list of dicts (one per row), or a dict of columns
Data = Union[str, os.PathLike, "pl.DataFrame", "pa.Table", Sequence[Mapping[str, Any]], Mapping[str, Any], Any]

_ACCEPTED = "a path, a polars or pandas DataFrame, a pyarrow Table, a datasets.Dataset, or a list of dicts"


def is_path(data: object) -> bool:
    return isinstance(data, (str, os.PathLike))


def _module_type(data: object, module: str, name: str) -> bool:
    """``isinstance(data, module.name)`` without importing ``module`` (an object of one implies it is)."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return isinstance(cls, type) and isinstance(data, cls)


def to_arrow(data: Data, what: str = "data") -> tuple[pa.Table, str]:
    """An in-memory table as a pyarrow Table, and a short name of its type for messages.

    Accepts a polars DataFrame or LazyFrame, a pandas DataFrame, a pyarrow Table or RecordBatch, a
    ``datasets.Dataset`` (its selected rows, in order), a list of dicts (one per row), a dict of columns,
    or any object with the Arrow PyCapsule stream interface (``__arrow_c_stream__``)."""
    import polars as pl
    import pyarrow as pa

    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if isinstance(data, pl.DataFrame):
        return data.to_arrow(), "polars.DataFrame"
    if isinstance(data, pa.Table):
        return data, "pyarrow.Table"
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), "pyarrow.RecordBatch"
    if _module_type(data, "pandas", "DataFrame"):
        try:
            return pa.Table.from_pandas(data, preserve_index=False), "pandas.DataFrame"
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
            raise UimError(f"{what}: cannot convert the pandas DataFrame to Arrow", expected="columns of one "
                           "type each", got=str(e).splitlines()[0],
                           hint="cast mixed object columns, e.g. df[col].astype(str)") from None
    if any(_module_type(data, "datasets", n) for n in ("Dataset", "DatasetDict", "IterableDataset")):
        return _from_datasets(data, what), "datasets.Dataset"
    if isinstance(data, Mapping):
        try:
            return pa.table(dict(data)), "dict of columns"
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise UimError(f"{what}: cannot read the dict as columns", expected="column name -> list of values, "
                           "all of one length", got=str(e).splitlines()[0]) from None
    if isinstance(data, (list, tuple)):
        return _from_rows(data, what), "list of dicts"
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data), type(data).__name__
    raise UimError(f"cannot read {what} of type {type(data).__module__}.{type(data).__name__}",
                   expected=_ACCEPTED, got=type(data).__name__)


def _from_datasets(data: Any, what: str) -> pa.Table:
    """A ``datasets.Dataset`` as the rows it shows; a ``DatasetDict`` or a streaming dataset is an error."""
    import pyarrow as pa

    if _module_type(data, "datasets", "DatasetDict"):
        splits = list(data.keys())
        raise UimError(f"{what} is a Hugging Face DatasetDict", expected="one split", got=f"splits {splits}",
                       hint=f"pass one split, e.g. data[{(splits or ['train'])[0]!r}]")
    if _module_type(data, "datasets", "IterableDataset"):
        raise UimError(f"{what} is a streaming datasets.IterableDataset", expected="a datasets.Dataset",
                       hint="materialise it first, e.g. datasets.Dataset.from_generator(...) or .take(n)")
    # with_format("arrow") honours an indices mapping (select, shuffle, filter); .data would not
    table = data.with_format("arrow")[:] if len(data) else data.data.table
    return table if isinstance(table, pa.Table) else pa.table(table)


def _from_rows(rows: list | tuple, what: str) -> pa.Table:
    """A list of dicts, one per row."""
    import pyarrow as pa

    if not rows:
        raise UimError(f"{what} has no rows", expected="at least one row", got="an empty list")
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, Mapping)), None)
    if bad is not None:
        raise UimError(f"{what}: row {bad} of the list is not a dict", expected="a list of dicts, one per row",
                       got=type(rows[bad]).__name__)
    try:
        return pa.Table.from_pylist([dict(r) for r in rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise UimError(f"{what}: cannot read the list of dicts as a table", expected="one type per key",
                       got=str(e).splitlines()[0]) from None


def with_embedding(table: pa.Table, embedding: Any, what: str) -> pa.Table:
    """``table`` with an ``embedding`` column (fixed-size list of float32) from a 2-D array."""
    import numpy as np
    import pyarrow as pa

    try:
        mat = np.asarray(embedding, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise UimError(f"{what}: embedding is not a numeric array", expected="a 2-D array, one row per data row",
                       got=str(e).splitlines()[0]) from None
    if mat.ndim != 2 or mat.shape[0] != table.num_rows:
        raise UimError(f"{what}: embedding has shape {mat.shape}",
                       expected=f"a 2-D array with one row per data row ({table.num_rows}, dim)",
                       got=f"shape {mat.shape}")
    if "embedding" in table.column_names:
        raise UimError(f"{what} already has an 'embedding' column", expected="one source of embeddings",
                       got="an array and a column", hint="pass embedding='embedding' to use the column, "
                                                         "or drop it")
    col = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(mat).reshape(-1)), mat.shape[1])
    return table.append_column("embedding", col)


def plain_types(table: pa.Table) -> pa.Table:
    """String and binary *view* columns as large_string / large_binary (what every reader returns)."""
    import pyarrow as pa

    fields = []
    for f in table.schema:
        if pa.types.is_string_view(f.type):
            f = f.with_type(pa.large_string())
        elif pa.types.is_binary_view(f.type):
            f = f.with_type(pa.large_binary())
        fields.append(f)
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


class Source:
    """What a ``uim`` command reads as a path: the path itself, or an in-memory table written to parquet."""

    def __init__(self, path: str, name: str | None = None) -> None:
        self.path = path
        self.name = name  # the in-memory type, None for a path the user gave

    @property
    def in_memory(self) -> bool:
        return self.name is not None

    def rename(self, message: str) -> str:
        """``message`` naming the in-memory object (``<polars.DataFrame>``) instead of its temporary file."""
        return message.replace(self.path, f"<{self.name}>") if self.in_memory else message


def materialize(data: Data, embedding: Any, scratch: Callable[[], Path], stem: str, what: str,
                encoding_errors: str = "strict") -> tuple[Source, str | None]:
    """``data`` as something the readers read, and the embedding column to use (None: auto-detect).

    A path with no embedding array is read where it is; anything else is written to
    ``STEM.parquet`` in a new folder under ``scratch()`` (called only then)."""
    import pyarrow.parquet as pq

    emb_col = embedding if isinstance(embedding, str) or embedding is None else None
    if is_path(data) and (embedding is None or isinstance(embedding, str)):
        return Source(os.fspath(data)), emb_col
    if is_path(data):  # a file plus an array of embeddings: read it, attach them
        import pyarrow as pa

        from uimdata.readers import ROW_COL, read_batches

        schema, batches = read_batches(os.fspath(data), encoding_errors=encoding_errors)
        parts = [b.drop_columns([ROW_COL]) for b in batches]
        table, name = (pa.concat_tables(parts) if parts else schema.empty_table()), f"{os.fspath(data)}"
    else:
        table, name = to_arrow(data, what)
    if embedding is not None and not isinstance(embedding, str):
        table = with_embedding(table, embedding, what)
        emb_col = "embedding"
    folder = scratch()
    folder.mkdir(parents=True, exist_ok=True)
    # a folder of its own, so the file is always STEM.parquet (samples.source_file records the name)
    path = os.path.join(tempfile.mkdtemp(prefix=f"{stem}-", dir=folder), f"{stem}.parquet")
    pq.write_table(plain_types(table), path, compression="zstd")
    return Source(path, name), emb_col


@contextmanager
def named(*sources: Source) -> Iterator[None]:
    """Errors that quote a temporary parquet file name the in-memory object it holds instead."""
    try:
        yield
    except UimError as e:
        msg = str(e)
        for s in sources:
            msg = s.rename(msg)
        e.args = (msg,)
        raise


class Scratch:
    """A folder for the parquet files of in-memory inputs, made on first use: ``folder`` when given (its
    owner removes it), else a new temporary one that :meth:`remove` deletes."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self._made: Path | None = None

    def __call__(self) -> Path:
        if self._folder is not None:
            return self._folder
        if self._made is None:
            self._made = Path(tempfile.mkdtemp(prefix="uim-input-"))
        return self._made

    def remove(self) -> None:
        import shutil

        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
            self._made = None
