"""The Python API: data frames in, data frames out.

For notebooks, what the ``uim`` command line does in files and shells::

    import uimdata

    run = uimdata.scan(df, label="label")      # a polars/pandas frame, Arrow table, datasets.Dataset,
    run.summary()                              # list of dicts or a path; -> polars DataFrames
    run.issues("near_duplicate")
    run.link(downstream)                       # downstream errors -> pre-training slices
    curated = run.curate("default")            # the kept (relabelled, reweighted) rows
    run.probe(test)                            # raw vs curated, same downstream model

Every function feeds the code paths the CLI uses (``uimdata.scan.scan``, ``link``, ``curate``, ``probe``,
``report``), so a run written here is the run ``uim scan`` writes for the same data, and every failure
is the same one-line :class:`~uimdata.errors.UimError`. Names and columns follow the run-directory
contract (README) and cleanlab's conventions: ``is_<issue>_issue``, ``<issue>_score`` (lower is worse),
``<issue>_reason``. The reference is ``docs/python-api.md``.
"""

from __future__ import annotations

import dataclasses
import html
import os
import shutil
import sys
import tempfile
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from uimdata.errors import UimError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import pyarrow as pa

__all__ = ["Run", "scan", "open", "UimError", "Data"]

#: anything :func:`scan` reads: a path (every format ``uim scan`` reads), a polars or pandas DataFrame,
#: a pyarrow Table, a ``datasets.Dataset``, a list of dicts (one per row), or a dict of columns
Data = Union[str, os.PathLike, "pl.DataFrame", "pa.Table", Sequence[Mapping[str, Any]], Mapping[str, Any], Any]

#: the file an in-memory corpus is kept in, inside its run directory (``uim curate`` copies its columns)
INPUT_FILE = "input.parquet"

_ACCEPTED = "a path, a polars or pandas DataFrame, a pyarrow Table, a datasets.Dataset, or a list of dicts"
#: the command-line checks of scan options, shared by ``uim scan`` and :func:`scan`
_CHOICES = {"label_model": ("--label-model", ("ensemble", "logreg", "knn"), "ensemble, logreg or knn"),
            "embedding_dtype": ("--embedding-dtype", ("float32", "float16"), "float32 or float16"),
            "index": ("--index", ("auto", "hnsw", "ivf", "ivfpq"), "auto, hnsw, ivf or ivfpq"),
            "encoding_errors": ("--encoding-errors", ("strict", "replace"), "strict or replace"),
            "chunking": ("--chunking", ("auto", "none"), "auto or none")}
_DEFAULT_POLICIES = ("conservative", "default", "aggressive")
_QUERY_HINT = "tables: samples, neighbors, flags, detectors; views: issues, issue_scores, issue_summary"


# ------------------------------------------------------------------------------------------- inputs

def _is_path(data: object) -> bool:
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
    if _module_type(data, "datasets", "DatasetDict"):
        splits = list(data.keys())
        raise UimError(f"{what} is a Hugging Face DatasetDict", expected="one split", got=f"splits {splits}",
                       hint=f"pass one split, e.g. data[{(splits or ['train'])[0]!r}]")
    if _module_type(data, "datasets", "IterableDataset"):
        raise UimError(f"{what} is a streaming datasets.IterableDataset", expected="a datasets.Dataset",
                       hint="materialise it first, e.g. datasets.Dataset.from_generator(...) or .take(n)")
    if _module_type(data, "datasets", "Dataset"):
        # with_format("arrow") honours an indices mapping (select, shuffle, filter); .data would not
        table = data.with_format("arrow")[:] if len(data) else data.data.table
        return (table if isinstance(table, pa.Table) else pa.table(table)), "datasets.Dataset"
    if isinstance(data, Mapping):
        try:
            return pa.table(dict(data)), "dict of columns"
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise UimError(f"{what}: cannot read the dict as columns", expected="column name -> list of values, "
                           "all of one length", got=str(e).splitlines()[0]) from None
    if isinstance(data, (list, tuple)):
        if not data:
            raise UimError(f"{what} has no rows", expected="at least one row", got="an empty list")
        bad = next((i for i, r in enumerate(data) if not isinstance(r, Mapping)), None)
        if bad is not None:
            raise UimError(f"{what}: row {bad} of the list is not a dict", expected="a list of dicts, one per row",
                           got=type(data[bad]).__name__)
        try:
            return pa.Table.from_pylist([dict(r) for r in data]), "list of dicts"
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise UimError(f"{what}: cannot read the list of dicts as a table", expected="one type per key",
                           got=str(e).splitlines()[0]) from None
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data), type(data).__name__
    raise UimError(f"cannot read {what} of type {type(data).__module__}.{type(data).__name__}",
                   expected=_ACCEPTED, got=type(data).__name__)


def _with_embedding(table: pa.Table, embedding: Any, what: str) -> pa.Table:
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


def _plain_types(table: pa.Table) -> pa.Table:
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


class _Source:
    """What a ``uim`` command reads as a path: the path itself, or an in-memory table written to parquet."""

    def __init__(self, path: str, name: str | None = None) -> None:
        self.path = path
        self.name = name  # the in-memory type, None for a path the user gave

    @property
    def in_memory(self) -> bool:
        return self.name is not None


def _materialize(data: Data, embedding: Any, scratch: Path, stem: str, what: str,
                 encoding_errors: str = "strict") -> tuple[_Source, str | None]:
    """``data`` as something the readers read, and the embedding column to use (None: auto-detect)."""
    import pyarrow.parquet as pq

    emb_col = embedding if isinstance(embedding, str) or embedding is None else None
    if _is_path(data) and (embedding is None or isinstance(embedding, str)):
        return _Source(os.fspath(data)), emb_col
    if _is_path(data):  # a file plus an array of embeddings: read it, attach them
        import pyarrow as pa

        from uimdata.readers import ROW_COL, read_batches

        schema, batches = read_batches(os.fspath(data), encoding_errors=encoding_errors)
        parts = [b.drop_columns([ROW_COL]) for b in batches]
        table, name = (pa.concat_tables(parts) if parts else schema.empty_table()), f"{os.fspath(data)}"
    else:
        table, name = to_arrow(data, what)
    if embedding is not None and not isinstance(embedding, str):
        table = _with_embedding(table, embedding, what)
        emb_col = "embedding"
    scratch.mkdir(parents=True, exist_ok=True)
    # a folder of its own, so the file is always STEM.parquet (samples.source_file records the name)
    path = os.path.join(tempfile.mkdtemp(prefix=f"{stem}-", dir=scratch), f"{stem}.parquet")
    pq.write_table(_plain_types(table), path, compression="zstd")
    return _Source(path, name), emb_col


@contextmanager
def _named(*sources: _Source) -> Iterator[None]:
    """Errors that quote a temporary parquet file name the in-memory object it holds instead."""
    try:
        yield
    except UimError as e:
        msg = str(e)
        for s in sources:
            if s.in_memory:
                msg = msg.replace(s.path, f"<{s.name}>")
        e.args = (msg,)
        raise


@contextmanager
def _bars(progress: bool) -> Iterator[None]:
    """``progress=False``: no bar from uimdata's executors, nor from Hugging Face while a model loads
    (transformers' "Loading weights"); the previous settings are restored afterwards."""
    from uimdata.executors.local import progress_bars

    if progress:
        with progress_bars(True):
            yield
        return
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        with progress_bars(False):
            yield
        return
    hub_off = are_progress_bars_disabled()
    tf = sys.modules.get("transformers.utils.logging")
    tf_on = tf.is_progress_bar_enabled() if tf is not None else not hub_off
    disable_progress_bars()
    if tf is not None:
        tf.disable_progress_bar()
    try:
        with progress_bars(False):
            yield
    finally:
        tf = sys.modules.get("transformers.utils.logging")  # imported meanwhile: it read the hub's setting
        if tf is not None and tf_on:
            tf.enable_progress_bar()
        (disable_progress_bars if hub_off else enable_progress_bars)()


def _tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def _unknown_options(func: str, given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise UimError(f"{func}: unknown option{'s' if len(extra) > 1 else ''} {', '.join(extra)}",
                       expected="one of " + ", ".join(sorted(allowed)), got=", ".join(extra))


def check_scan_options(**values: Any) -> None:
    """The choices ``uim scan`` validates before any work (label_model, embedding_dtype, index,
    encoding_errors), with the command line's messages."""
    for key, value in values.items():
        flag, choices, words = _CHOICES[key]
        if value not in choices:
            raise UimError(flag, expected=words, got=repr(value))


# ------------------------------------------------------------------------------------------- scan

def scan(data: Data, out: str | os.PathLike[str] | None = None, *, text: str | None = None,
         label: str | None = None, id: str | None = None, embedding: str | Any | None = None,
         progress: bool = True, **options: Any) -> Run:
    """Scan a corpus: embed it (unless it brings embeddings), build the kNN graph, run the detectors and
    write a run directory; returns the :class:`Run`.

    ``data``: a path (parquet file or directory, jsonl, csv/tsv, a ``save_to_disk`` directory), a polars or
    pandas DataFrame, a pyarrow Table, a ``datasets.Dataset``, a list of dicts or a dict of columns.
    ``out``: the run directory (the CLI's ``-o``, same safety rules: an existing path must be a uimdata
    run or empty); ``None`` writes to a temporary directory removed when the ``Run`` is garbage-collected
    or closed. ``text`` / ``label`` / ``id``: column names (``None`` auto-detects, ``""`` = none / derive
    ids). ``embedding``: a column name, or an array of shape ``(rows, dim)`` aligned with the rows (the
    embed stage is then skipped). ``progress``: show the per-stage progress bars.

    ``options``: the other ``uim scan`` options under their ``ScanConfig`` names: ``model``, ``k``,
    ``detectors`` (list or comma-separated), ``detector_options``, ``label_model``, ``reference`` (a path
    or any ``data`` type: adds ``off_target``), ``device``, ``exact_max``, ``index``, ``embedding_dtype``,
    ``embed_batch_rows``, ``cache_dir``, ``encoding_errors``, ``engine``, ``address`` (and any later
    ``ScanConfig`` field, e.g. ``keep_cols``, ``group_cols``, ``chunking``). Unknown names are an error.

    An in-memory corpus is written to a temporary ``input.parquet`` and scanned from there, so the run is
    the one ``uim scan input.parquet`` writes; when ``curate`` will need to re-read it (the corpus brings
    its own embedding column), it is kept in the run directory as ``input.parquet``.
    """
    from uimdata.executors.local import LocalExecutor
    from uimdata.scan import DEFAULT_DETECTORS, ScanConfig, make_executor
    from uimdata.scan import scan as run_scan

    fixed = ("corpus", "out", "text_col", "label_col", "id_col", "embedding_col")
    allowed = [f.name for f in dataclasses.fields(ScanConfig) if f.name not in fixed]
    _unknown_options("scan", options, allowed)
    check_scan_options(**{k: options[k] for k in _CHOICES if k in options})
    if "detectors" in options:  # None = all; a list or "a,b"; [] = none (embed and index only)
        options["detectors"] = DEFAULT_DETECTORS if options["detectors"] is None else _tuple(options["detectors"])
    for key in ("keep_cols", "drop_cols", "group_cols"):  # lists; "a,b" accepted as for the CLI
        if isinstance(options.get(key), str):
            options[key] = list(_tuple(options[key]))
    if options.get("cache_dir") is not None:
        options["cache_dir"] = os.fspath(options["cache_dir"])
    tmp = tempfile.TemporaryDirectory(prefix="uim-run-") if out is None else None
    target = Path(tmp.name) / "run" if tmp is not None else Path(out)  # type: ignore[arg-type]
    scratch = Path(tmp.name) if tmp is not None else Path(tempfile.mkdtemp(prefix="uim-input-"))
    try:
        enc = options.get("encoding_errors", "strict")
        source, emb_col = _materialize(data, embedding, scratch, "input", "data", enc)
        sources = [source]
        if options.get("reference") is not None:
            ref, _ = _materialize(options["reference"], None, scratch, "reference", "reference", enc)
            options["reference"] = ref.path
            sources.append(ref)
        cfg = ScanConfig(corpus=source.path, out=os.fspath(target), text_col=text, label_col=label, id_col=id,
                         embedding_col=emb_col, **options)
        with _named(*sources), _bars(progress):
            if cfg.engine == "local":
                ex = LocalExecutor(progress=progress)
            elif cfg.engine == "ray":
                from uimdata.executors.ray import RayExecutor

                ex = RayExecutor(address=cfg.address, progress=progress)
            else:
                ex = make_executor(cfg)  # the one-line error naming the engines
            res = run_scan(cfg, ex)
        path = res.run.path
        if source.in_memory and _needs_input(res.run.read_meta()):
            _keep_input(path, Path(source.path))
    except BaseException:
        if tmp is not None:
            tmp.cleanup()
        raise
    finally:
        if tmp is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return Run(path, _tmp=tmp)


def _needs_input(meta: Mapping[str, Any]) -> bool:
    """Whether ``curate`` re-reads the corpus of this run: for the corpus's own embedding column, or
    (runs whose ``samples`` do not hold the corpus's other columns) for those columns."""
    return "metadata" not in meta or bool((meta.get("columns") or {}).get("embedding"))


def _keep_input(run_path: Path, source: Path) -> None:
    """Move an in-memory corpus' parquet into the run (``input.parquet``) and point ``run.json`` at it,
    so that a later ``curate`` (here, after :func:`open`, or ``uim curate``) can re-read it."""
    from uimdata.rundir import RunDir

    kept = run_path / INPUT_FILE
    shutil.move(os.fspath(source), os.fspath(kept))
    rd = RunDir(run_path)
    meta = rd.read_meta()
    meta["config"]["corpus"] = os.fspath(kept)
    for f in meta.get("files") or []:
        if isinstance(f, dict) and f.get("path") == os.fspath(source):
            f["path"] = os.fspath(kept)
    rd.write_meta(meta)


def open(path: str | os.PathLike[str]) -> Run:  # noqa: A001 - uimdata.open, like io.open
    """The :class:`Run` of an existing run directory (written by ``uim scan`` or :func:`scan`)."""
    from uimdata.rundir import is_run_dir

    p = Path(path).expanduser()
    if not p.exists():
        raise UimError(f"run directory not found: {path}", expected="a directory written by `uim scan`",
                       got="no such path")
    if not p.is_dir() or not is_run_dir(p):
        raise UimError(f"{path} is not a run directory", expected="a directory with the run.json `uim scan` "
                       "writes", got="a file" if p.is_file() else "a folder without a uimdata run.json",
                       hint="scan it first: uimdata.scan(data, out=...)")
    return Run(p)


# ------------------------------------------------------------------------------------------- Run

class Run:
    """One run directory, read through DuckDB into polars DataFrames (``.to_pandas()`` is one call away).

    ``path`` is the directory; a run scanned with ``out=None`` lives in a temporary directory that is
    removed when this object is garbage-collected or :meth:`close`-d (or at the end of a ``with`` block).
    """

    def __init__(self, path: str | os.PathLike[str], *, _tmp: tempfile.TemporaryDirectory[str] | None = None) -> None:
        from uimdata.rundir import RunDir

        self.path: Path = Path(path)
        self._dir = RunDir(self.path)
        self._tmp = _tmp
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._cleanups: list[weakref.finalize] = []
        if _tmp is not None:
            self._cleanups.append(weakref.finalize(self, _tmp.cleanup))

    # --- lifetime ------------------------------------------------------------------------------------
    @property
    def temporary(self) -> bool:
        """Whether the run lives in a temporary directory owned by this object."""
        return self._tmp is not None

    def close(self) -> None:
        """Remove the temporary directories this object owns (a temporary run, curated exports)."""
        for f in self._cleanups:
            f()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scratch_dir(self) -> Path:
        """A private temporary directory living as long as this object (in-memory downstream sets,
        curated exports without ``out``)."""
        if self._tmp is not None:
            d = Path(self._tmp.name) / "scratch"
            d.mkdir(exist_ok=True)
            return d
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="uim-scratch-")
            self._cleanups.append(weakref.finalize(self, self._scratch.cleanup))
        return Path(self._scratch.name)

    # --- reading -------------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """``run.json``: version, scan config, resolved columns, rows, embedding, index, timings, summary."""
        return self._dir.read_meta()

    @property
    def n_rows(self) -> int:
        return int(self.meta.get("rows", 0))

    def _frame(self, query: str, params: Sequence[Any] | None = None, allow_files: bool = False) -> pl.DataFrame:
        import duckdb

        from uimdata.store import connect

        con = connect(self._dir, allow_files=allow_files)
        try:
            rel = con.sql(query) if params is None else con.sql(query, params=list(params))
            if rel is None:
                raise UimError("query returned no rows", expected="a SELECT", got=query[:60])
            return rel.pl()
        except duckdb.PermissionException as e:
            raise UimError(f"query failed: {str(e).splitlines()[0]}", expected="SQL over the run's tables",
                           hint="pass allow_files=True to let this query read or write files outside the "
                                "run") from None
        except duckdb.Error as e:
            raise UimError(f"query failed: {str(e).splitlines()[0]}", hint=_QUERY_HINT) from None
        finally:
            con.close()

    def sql(self, query: str, *, allow_files: bool = False) -> pl.DataFrame:
        """Run SQL against ``uim.duckdb`` (read-only; no file access unless ``allow_files``), as
        ``uim query`` does. Tables: samples, neighbors, flags, detectors, and the whole-run tables;
        views: issues, issue_scores, issue_summary (see the README's run-directory contract)."""
        return self._frame(query, allow_files=allow_files)

    def tables(self) -> list[str]:
        """The names of the tables and views in ``uim.duckdb``."""
        df = self._frame("SELECT table_name FROM information_schema.tables ORDER BY table_name")
        return df["table_name"].to_list()

    def table(self, name: str) -> pl.DataFrame:
        """One whole table or view, e.g. ``slices``, ``issue_attribution``, ``clusters``, ``probe_results``."""
        names = self.tables()
        if name not in names:
            raise UimError(f"run {self.path} has no table {name!r}", expected="one of " + ", ".join(names),
                           got=repr(name), hint="slices/issue_attribution come from link(), curation from "
                                                "curate(), probe_results from probe()")
        return self._frame(f'SELECT * FROM "{name}"')

    def samples(self) -> pl.DataFrame:
        """The ``samples`` table: ``id``, ``text``, ``label`` (when the corpus has one), ``text_hash``,
        ``n_chars``, ``row``; one row per corpus row, in corpus order."""
        return self._frame("SELECT * FROM samples ORDER BY row")

    def issue_names(self) -> list[str]:
        """The issues this run has columns for (detectors that ran, plus ``inherited_label_bias`` after
        :meth:`link`), in ``flags`` order."""
        cols = self._frame("SELECT * FROM flags LIMIT 0").columns
        return [c[3:-6] for c in cols if c.startswith("is_") and c.endswith("_issue")]

    def _check_issue(self, issue: str) -> list[str]:
        names = self.issue_names()
        if issue not in names:
            skipped = dict(self.meta.get("skipped") or {})
            hint = (f"the {issue} detector was skipped: {skipped[issue]}" if issue in skipped
                    else "inherited_label_bias needs run.link(downstream) first" if issue == "inherited_label_bias"
                    else None)
            raise UimError(f"run {self.path} has no issue {issue!r}",
                           expected="one of " + (", ".join(names) or "(no detector ran)"), got=repr(issue),
                           hint=hint)
        return names

    def _issue_columns(self, issue: str, columns: Sequence[str]) -> list[str]:
        """The ``flags`` columns of one issue: ``is_<issue>_issue``, ``<issue>_*`` and its extra columns."""
        import pyarrow.parquet as pq

        names = self._check_issue(issue)
        own = {f"is_{issue}_issue"} | {c for c in columns if c.startswith(f"{issue}_")}
        det = self._dir.detector(issue)
        if det.exists():
            own |= set(pq.read_schema(det).names) - {"id"}
        # a longer issue name sharing the prefix (near_duplicate_* is not near_*) keeps its columns
        for other in names:
            if other != issue and other.startswith(f"{issue}_"):
                own -= {c for c in columns if c.startswith(f"{other}_") or c == f"is_{other}_issue"}
        return [c for c in columns if c in own]

    def flags(self, issue: str | None = None) -> pl.DataFrame:
        """The ``flags`` table: ``id`` and, per issue, ``is_<issue>_issue``, ``<issue>_score`` (lower is
        worse), ``<issue>_reason`` and its extra columns; one row per sample, in corpus order (cleanlab's
        ``Datalab.get_issues()``). With ``issue``: ``id`` and that issue's columns only
        (``get_issues(issue)``)."""
        df = self._frame("SELECT * FROM flags")
        if issue is None:
            return df
        return df.select(["id", *self._issue_columns(issue, df.columns)])

    def issues(self, issue: str | None = None) -> pl.DataFrame:
        """Flagged rows only (the ``issues`` view): ``id``, ``issue``, ``score``, ``reason``, worst first
        within each issue; with ``issue``, that issue's rows."""
        if issue is None:
            return self._frame("SELECT * FROM issues")
        self._check_issue(issue)
        return self._frame("SELECT * FROM issues WHERE issue = ? ORDER BY score, id", [issue])

    def summary(self) -> pl.DataFrame:
        """The ``issue_summary`` view: ``issue``, ``n_flagged``, ``fraction``, ``mean_score``,
        ``description``; one row per detector that ran (cleanlab's ``get_issue_summary()``)."""
        return self._frame("SELECT * FROM issue_summary")

    def examples(self, issue: str, n: int = 5) -> pl.DataFrame:
        """The ``n`` worst flagged rows of ``issue`` (lowest score first): ``id``, ``text``, ``label`` (when
        the corpus has one), ``<issue>_score``, ``<issue>_reason`` and the issue's extra columns
        (``duplicate_of``, ``suggested_label``, ``corrupted_rule``, ...)."""
        if n < 0:
            raise UimError("examples: n", expected="a count >= 0", got=str(n))
        cols = [c for c in self._issue_columns(issue, self._frame("SELECT * FROM flags LIMIT 0").columns)
                if c != f"is_{issue}_issue"]
        label = ["s.label"] if "label" in self._frame("SELECT * FROM samples LIMIT 0").columns else []
        select = ", ".join(["f.id", "s.text", *label, *[f'f."{c}"' for c in cols]])
        df = self._frame(f'SELECT {select} FROM flags f JOIN samples s USING (id) WHERE f."is_{issue}_issue" '
                         f'ORDER BY f."{issue}_score", f.id LIMIT ?', [int(n)])
        return df

    def neighbors(self, id: str) -> pl.DataFrame:
        """The kNN neighbours of one sample, nearest first: ``id``, ``rank``, ``neighbor_id``, ``cosine``,
        ``neighbor_text`` (and ``neighbor_label`` when the corpus has labels)."""
        found = self._frame("SELECT count(*) AS n FROM samples WHERE id = ?", [str(id)])["n"][0]
        if not found:
            some = self._frame("SELECT id FROM samples ORDER BY row LIMIT 3")["id"].to_list()
            raise UimError(f"run {self.path} has no sample with id {id!r}",
                           expected=f"one of its {self.n_rows:,} ids (e.g. {', '.join(repr(x) for x in some)})",
                           got=repr(id), hint="ids are in run.samples()['id']")
        label = ", s.label AS neighbor_label" if "label" in self._frame("SELECT * FROM samples LIMIT 0").columns \
            else ""
        return self._frame("SELECT n.id, n.rank, n.neighbor_id, n.cosine, s.text AS neighbor_text"
                           f"{label} FROM neighbors n JOIN samples s ON s.id = n.neighbor_id "
                           "WHERE n.id = ? ORDER BY n.rank", [str(id)])

    def embeddings(self) -> np.ndarray:
        """The embedding matrix (float32, L2-normalised), rows in ``samples`` order."""
        return self._dir.read_embeddings()

    # --- interpret and mitigate ----------------------------------------------------------------------
    def _downstream(self, downstream: Data, embedding: Any, stem: str) -> tuple[_Source, str | None]:
        return _materialize(downstream, embedding, self._scratch_dir(), stem, "downstream")

    def link(self, downstream: Data, *, progress: bool = True, **options: Any) -> pl.DataFrame:
        """``uim link``: attribute a downstream model's errors to pre-training slices and issues. Returns
        the ``slices`` table (ranked; ``run.table("issue_attribution")`` has the attribution); adds the
        ``inherited_label_bias`` issue to ``flags``.

        ``downstream``: a path or any ``data`` type, with ``text`` (or an ``embedding`` column / array) and
        the outcome: ``correct``, or ``prediction`` next to ``label``, or ``loss``. ``options``: ``k``,
        ``slice_cols`` (``--slice-col``), ``min_down``, ``device``, ``cache_dir``, the column names
        ``text``, ``label``, ``prediction``, ``correct``, ``loss``, ``id`` (or their ``*_col`` forms),
        ``embedding`` (a column name or an array aligned with the rows), and ``LinkConfig``'s other fields.
        Warnings (e.g. labels the corpus lacks) are issued as Python warnings."""
        from uimdata.device import check_device
        from uimdata.link import LinkConfig
        from uimdata.link import link as run_link

        opts = _aliases(options, ("text", "label", "prediction", "correct", "loss", "id"))
        embedding = opts.pop("embedding_col", None)
        if "slice_col" in opts:
            opts["slice_cols"] = opts.pop("slice_col")
        if "slice_cols" in opts:
            opts["slice_cols"] = _tuple(opts["slice_cols"])
        if opts.get("cache_dir") is not None:
            opts["cache_dir"] = os.fspath(opts["cache_dir"])
        allowed = [f.name for f in dataclasses.fields(LinkConfig) if f.name not in ("run", "downstream")]
        _unknown_options("link", opts, allowed)
        source, emb_col = self._downstream(downstream, embedding, "downstream")
        cfg = LinkConfig(run=os.fspath(self.path), downstream=source.path, embedding_col=emb_col, **opts)
        with _named(source), _bars(progress):
            check_device(cfg.device)
            res = run_link(cfg)
        for w in res.warnings:
            warnings.warn(_renamed(w, source), UserWarning, stacklevel=2)
        return res.slices

    def curate(self, policy: str | os.PathLike[str] = "default", out: str | os.PathLike[str] | None = None, *,
               format: str = "parquet", upsample: bool = False) -> pl.DataFrame:
        """``uim curate``: apply a policy (``conservative``, ``default``, ``aggressive`` or a TOML file) and
        return the curated rows: ``id``, ``text``, ``label`` (possibly relabelled), ``original_label``,
        ``weight``, then the input's other columns. Writes ``curated.parquet`` (or ``format`` jsonl / hf),
        ``manifest.parquet`` and ``policy.json`` to ``out`` (default: a temporary directory living as long
        as this object) and the ``curation`` table into the run (:meth:`manifest`)."""
        import polars as pl

        from uimdata.curate import curate as run_curate

        if out is None:
            out = tempfile.mkdtemp(prefix="curated-", dir=self._scratch_dir())
        cur, target = run_curate(os.fspath(self.path), os.fspath(out), os.fspath(policy), format, upsample)
        self.curated_path: Path = Path(target)
        if format == "parquet":
            return pl.read_parquet(target)
        if format == "jsonl":
            return pl.read_ndjson(target)
        from datasets import load_from_disk

        return pl.from_arrow(load_from_disk(os.fspath(target)).with_format("arrow")[:])  # type: ignore[return-value]

    def manifest(self) -> pl.DataFrame:
        """The last curation's manifest (the ``curation`` table): every input row with ``id``, ``row``,
        ``action`` (kept / dropped / relabelled / reweighted), ``issue``, ``reason``, ``original_label``,
        ``label``, ``weight``, ``policy``."""
        if "curation" not in self.tables():
            raise UimError(f"run {self.path} has no curation", expected="a run curated by run.curate() or "
                           "`uim curate`", got="no curation table", hint="call run.curate() first")
        return self._frame("SELECT * FROM curation ORDER BY row")

    def probe(self, downstream: Data, policies: str | Sequence[str] = _DEFAULT_POLICIES, *, progress: bool = True,
              **options: Any) -> pl.DataFrame:
        """``uim probe``: train the same softmax-regression probe on the raw corpus and on each policy's
        curation, evaluate on ``downstream`` (true labels needed; not the split :meth:`link` used).
        Returns ``probe_results``: ``policy``, ``metric`` (accuracy, macro_accuracy, tail_accuracy,
        slice_accuracy), ``value``, ``ci_lo``, ``ci_hi``, ``n_eval``, ``n_train``, ``rows_dropped``,
        ``rows_relabelled``, ``rows_reweighted``, ``linked_on``, ``evaluated_on``, ``slices``.
        ``options``: ``allow_leak``, ``top_slices``, ``k``, ``device``, ``cache_dir``, the column names
        ``label``, ``text`` (or ``*_col``), ``embedding`` (a column name or an array)."""
        from uimdata.device import check_device
        from uimdata.probe import probe as run_probe

        opts = _aliases(options, ("text", "label"))
        embedding = opts.pop("embedding_col", None)
        if opts.get("cache_dir") is not None:
            opts["cache_dir"] = os.fspath(opts["cache_dir"])
        _unknown_options("probe", opts, ("allow_leak", "label_col", "text_col", "top_slices", "k", "device",
                                         "cache_dir"))
        names = _tuple(policies) if isinstance(policies, str) else tuple(os.fspath(p) for p in policies)
        source, emb_col = self._downstream(downstream, embedding, "probe")
        with _named(source), _bars(progress):
            check_device(opts.get("device", "auto"))
            res = run_probe(os.fspath(self.path), source.path, names or _DEFAULT_POLICIES,
                            embedding_col=emb_col, **opts)
        for w in res.warnings:
            warnings.warn(_renamed(w, source), UserWarning, stacklevel=2)
        return res.results

    def report(self, path: str | os.PathLike[str] | None = None, *, examples: int = 10) -> Path:
        """``uim report``: write the self-contained HTML report (default ``RUN/report.html``); returns
        its path."""
        from uimdata.report import write_report

        return write_report(self._dir, path, examples=examples)

    # --- display -------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        try:
            flagged = {r["issue"]: r["n_flagged"] for r in self.summary().iter_rows(named=True)}
            return f"Run({os.fspath(self.path)!r}, rows={self.n_rows}, flagged={flagged})"
        except UimError:
            return f"Run({os.fspath(self.path)!r})"

    def _repr_html_(self) -> str:
        """The issue summary as an HTML table (notebooks show it for a bare ``run``)."""
        esc = html.escape
        try:
            meta = self.meta
            summ = self.summary()
        except UimError as e:
            return f"<div><b>uimdata run</b> {esc(os.fspath(self.path))}: {esc(str(e))}</div>"
        emb = meta.get("embedding", {}).get("model", "")
        head = (f"<div><b>uimdata run</b> <code>{esc(os.fspath(self.path))}</code>: {meta.get('rows', 0):,} rows, "
                f"embeddings {esc(str(emb))}, index {esc(str(meta.get('index', '')))}</div>")
        n = max(int(meta.get("rows", 0)), 1)
        rows = "".join(
            f"<tr><td>{esc(str(r['issue']))}</td><td style='text-align:right'>{r['n_flagged']:,}</td>"
            f"<td style='text-align:right'>{100 * r['n_flagged'] / n:.1f}%</td>"
            f"<td style='text-align:right'>{'' if r['mean_score'] is None else format(r['mean_score'], '.3f')}</td>"
            f"<td style='text-align:left'>{esc(str(r['description'] or ''))}</td></tr>"
            for r in summ.iter_rows(named=True))
        table = ("<table><thead><tr><th>issue</th><th>flagged</th><th>%</th><th>mean score</th>"
                 f"<th style='text-align:left'>description</th></tr></thead><tbody>{rows}</tbody></table>")
        skipped = "".join(f"<div style='color:#777'>{esc(str(k))}: skipped, {esc(str(v))}</div>"
                          for k, v in (meta.get("skipped") or {}).items())
        return head + table + skipped


def _aliases(options: Mapping[str, Any], short: Sequence[str]) -> dict[str, Any]:
    """``text=`` etc. as ``text_col=`` (both spellings accepted; ``embedding`` too)."""
    opts = dict(options)
    for name in (*short, "embedding"):
        if name in opts:
            if f"{name}_col" in opts:
                raise UimError(f"both {name}= and {name}_col= given", expected="one of them")
            opts[f"{name}_col"] = opts.pop(name)
    return opts


def _renamed(message: str, source: _Source) -> str:
    return message.replace(source.path, f"<{source.name}>") if source.in_memory else message
