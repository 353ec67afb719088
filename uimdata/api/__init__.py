"""The Python API: data frames in, data frames out.

For notebooks, what the ``uim`` command line does in files and shells::

    import uimdata

    run = uimdata.scan(df, label="label")      # a polars/pandas frame, Arrow table, datasets.Dataset,
    run.summary()                              # list of dicts or a path; -> polars DataFrames
    run.issues("near_duplicate")
    run.link(downstream)                       # downstream errors -> pre-training slices
    curated = run.curate("default")            # the kept (relabelled, reweighted) rows
    run.probe(test)                            # raw vs curated, same downstream model

This module holds the two ways to a :class:`~uimdata.api.run.Run`: :func:`scan` a corpus, :func:`open` a
run directory. The rest of the package: ``inputs`` (in-memory data -> a file the readers read),
``options`` (keyword options -> the pipeline configs), ``commands`` (the pipeline commands, as the API
and the ``uim`` command line both run them), ``run`` (the ``Run`` object), ``notebook`` (its HTML) and
``progress`` (the ``progress=`` switch).

Every function feeds the code paths the CLI uses (``uimdata.scan.scan``, ``link``, ``curate``, ``probe``,
``report``), so a run written here is the run ``uim scan`` writes for the same data, and every failure
is the same one-line :class:`~uimdata.errors.UimError`. Names and columns follow the run-directory
contract (README) and cleanlab's conventions: ``is_<issue>_issue``, ``<issue>_score`` (lower is worse),
``<issue>_reason``. The reference is ``docs/python-api.md``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from uimdata.api.commands import INPUT_FILE, scan_into
from uimdata.api.inputs import Data, Scratch, to_arrow
from uimdata.api.options import check_scan_options, scan_options
from uimdata.api.run import Run
from uimdata.errors import UimError

__all__ = ["Run", "scan", "open", "UimError", "Data", "INPUT_FILE", "to_arrow", "check_scan_options"]


def scan(data: Data, out: str | os.PathLike[str] | None = None, *, text: str | None = None,
         label: str | None = None, id: str | None = None, embedding: str | Any | None = None,
         progress: bool | None = True, **options: Any) -> Run:
    """Scan a corpus: embed it (unless it brings embeddings), build the kNN graph, run the detectors and
    write a run directory; returns the :class:`Run`.

    ``data``: a path (parquet file or directory, jsonl, csv/tsv, a ``save_to_disk`` directory), a polars or
    pandas DataFrame, a pyarrow Table, a ``datasets.Dataset``, a list of dicts or a dict of columns.
    ``out``: the run directory (the CLI's ``-o``, same safety rules: an existing path must be a uimdata
    run or empty); ``None`` writes to a temporary directory removed when the ``Run`` is garbage-collected
    or closed. ``text`` / ``label`` / ``id``: column names (``None`` auto-detects, ``""`` = none / derive
    ids). ``embedding``: a column name, or an array of shape ``(rows, dim)`` aligned with the rows (the
    embed stage is then skipped). ``progress``: show the per-stage progress bars (``None``: as the
    surrounding settings say, which is what ``uim scan`` does).

    ``options``: the other ``uim scan`` options under their ``ScanConfig`` names: ``model``, ``k``,
    ``detectors`` (list or comma-separated), ``detector_options``, ``label_model``, ``reference`` (a path
    or any ``data`` type: adds ``off_target``), ``device``, ``exact_max``, ``index``, ``embedding_dtype``,
    ``embed_batch_rows``, ``cache_dir``, ``encoding_errors``, ``engine``, ``address`` (and any later
    ``ScanConfig`` field, e.g. ``keep_cols``, ``group_cols``, ``chunking``). Unknown names are an error.

    An in-memory corpus is written to a temporary ``input.parquet`` and scanned from there, so the run is
    the one ``uim scan input.parquet`` writes; when ``curate`` will need to re-read it (the corpus brings
    its own embedding column), it is kept in the run directory as ``input.parquet``.
    """
    opts = scan_options(options)
    tmp = tempfile.TemporaryDirectory(prefix="uim-run-") if out is None else None
    target = Path(tmp.name) / "run" if tmp is not None else Path(out)  # type: ignore[arg-type]
    scratch = Scratch(Path(tmp.name) if tmp is not None else None)
    try:
        path = scan_into(data, target, scratch, text=text, label=label, id=id, embedding=embedding,
                         progress=progress, options=opts)
    except BaseException:
        if tmp is not None:
            tmp.cleanup()
        raise
    finally:
        scratch.remove()
    return Run(path, _tmp=tmp)


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
