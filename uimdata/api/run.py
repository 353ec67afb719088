"""``Run``: one run directory as a notebook sees it. Its tables and views come back as polars DataFrames
(read through DuckDB), and ``link`` / ``curate`` / ``probe`` / ``report`` run the ``uim`` commands on it
(:mod:`uimdata.api.commands`), returning their main table."""

from __future__ import annotations

import os
import tempfile
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uimdata.api import commands
from uimdata.api.inputs import Data
from uimdata.api.notebook import error_html, summary_html
from uimdata.api.options import DEFAULT_POLICIES
from uimdata.errors import UimError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


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

    def scratch_dir(self) -> Path:
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
        from uimdata.store import query as run_query

        return run_query(self._dir, query, params, allow_files=allow_files)

    def _columns(self, table: str) -> list[str]:
        return self._frame(f"SELECT * FROM {table} LIMIT 0").columns

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
        return [c[3:-6] for c in self._columns("flags") if c.startswith("is_") and c.endswith("_issue")]

    def _check_issue(self, issue: str) -> list[str]:
        names = self.issue_names()
        if issue not in names:
            from uimdata.detectors import REGISTRY

            skipped = dict(self.meta.get("skipped") or {})
            runs_in = REGISTRY[issue].runs_in if issue in REGISTRY else "scan"
            hint = (f"the {issue} detector was skipped: {skipped[issue]}" if issue in skipped
                    else f"{issue} needs run.{runs_in}(downstream) first" if runs_in != "scan" else None)
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
        cols = [c for c in self._issue_columns(issue, self._columns("flags")) if c != f"is_{issue}_issue"]
        label = ["s.label"] if "label" in self._columns("samples") else []
        select = ", ".join(["f.id", "s.text", *label, *[f'f."{c}"' for c in cols]])
        return self._frame(f'SELECT {select} FROM flags f JOIN samples s USING (id) WHERE f."is_{issue}_issue" '
                           f'ORDER BY f."{issue}_score", f.id LIMIT ?', [int(n)])

    def neighbors(self, id: str) -> pl.DataFrame:
        """The kNN neighbours of one sample, nearest first: ``id``, ``rank``, ``neighbor_id``, ``cosine``,
        ``neighbor_text`` (and ``neighbor_label`` when the corpus has labels)."""
        found = self._frame("SELECT count(*) AS n FROM samples WHERE id = ?", [str(id)])["n"][0]
        if not found:
            some = self._frame("SELECT id FROM samples ORDER BY row LIMIT 3")["id"].to_list()
            raise UimError(f"run {self.path} has no sample with id {id!r}",
                           expected=f"one of its {self.n_rows:,} ids (e.g. {', '.join(repr(x) for x in some)})",
                           got=repr(id), hint="ids are in run.samples()['id']")
        label = ", s.label AS neighbor_label" if "label" in self._columns("samples") else ""
        return self._frame("SELECT n.id, n.rank, n.neighbor_id, n.cosine, s.text AS neighbor_text"
                           f"{label} FROM neighbors n JOIN samples s ON s.id = n.neighbor_id "
                           "WHERE n.id = ? ORDER BY n.rank", [str(id)])

    def embeddings(self) -> np.ndarray:
        """The embedding matrix (float32, L2-normalised), rows in ``samples`` order."""
        return self._dir.read_embeddings()

    # --- interpret and mitigate ----------------------------------------------------------------------
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
        res = commands.link(self, downstream, progress=progress, **options)
        for w in res.warnings:
            warnings.warn(w, UserWarning, stacklevel=2)
        return res.slices

    def curate(self, policy: str | os.PathLike[str] = "default", out: str | os.PathLike[str] | None = None, *,
               format: str = "parquet", upsample: bool = False) -> pl.DataFrame:
        """``uim curate``: apply a policy (``conservative``, ``default``, ``aggressive`` or a TOML file) and
        return the curated rows: ``id``, ``text``, ``label`` (possibly relabelled), ``original_label``,
        ``weight``, then the input's other columns. Writes ``curated.parquet`` (or ``format`` jsonl / hf),
        ``manifest.parquet`` and ``policy.json`` to ``out`` (default: a temporary directory living as long
        as this object) and the ``curation`` table into the run (:meth:`manifest`)."""
        import polars as pl

        _, target = commands.curate(self, policy, out, format=format, upsample=upsample)
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

    def probe(self, downstream: Data, policies: str | Sequence[str] = DEFAULT_POLICIES, *, progress: bool = True,
              **options: Any) -> pl.DataFrame:
        """``uim probe``: train the same softmax-regression probe on the raw corpus and on each policy's
        curation, evaluate on ``downstream`` (true labels needed; not the split :meth:`link` used).
        Returns ``probe_results``: ``policy``, ``metric`` (accuracy, macro_accuracy, tail_accuracy,
        slice_accuracy), ``value``, ``ci_lo``, ``ci_hi``, ``n_eval``, ``n_train``, ``rows_dropped``,
        ``rows_relabelled``, ``rows_reweighted``, ``linked_on``, ``evaluated_on``, ``slices``.
        ``options``: ``allow_leak``, ``top_slices``, ``k``, ``device``, ``cache_dir``, the column names
        ``label``, ``text`` (or ``*_col``), ``embedding`` (a column name or an array)."""
        res = commands.probe(self, downstream, policies, progress=progress, **options)
        for w in res.warnings:
            warnings.warn(w, UserWarning, stacklevel=2)
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
        try:
            meta = self.meta
            summ = self.summary()
        except UimError as e:
            return error_html(self.path, e)
        return summary_html(self.path, meta, summ)
