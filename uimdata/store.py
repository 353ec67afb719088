"""store: ``RUN/uim.duckdb``, the run's SQL face. :func:`publish` is the one way a command's results
reach it (the whole-run tables written under ``RUN/tables/``, then the database rebuilt from every
artifact with the queries in ``sql/``); :func:`connect` and :func:`query` read it, locked inside the run."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from uimdata.errors import UimError
from uimdata.rundir import RunDir, atomic_write_parquet, atomic_write_text

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

#: the on-disk format of uim.duckdb: DuckDB 1.0.0 and every later version open it
STORAGE_VERSION = "v1.0.0"
#: where a whole-run table NAME lives (``RUN/tables/NAME.parquet``); each becomes the table NAME
TABLES_DIR = "tables"
#: what a failed query's message suggests
QUERY_HINT = "tables: samples, neighbors, flags, detectors; views: issues, issue_scores, issue_summary"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def sql_dir() -> Path:
    """``sql/`` ships inside the wheel as ``uimdata/sql``; a source checkout keeps it at the top."""
    here = Path(__file__).resolve().parent
    for cand in (here / "sql", here.parent / "sql"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("uimdata's sql/ directory is missing from this installation")


def load_sql(name: str) -> str:
    return (sql_dir() / f"{name}.sql").read_text()


def table_path(run: RunDir, name: str) -> Path:
    """The parquet file of the whole-run table ``name``."""
    return run.path / TABLES_DIR / f"{name}.parquet"


def read_detectors(run: RunDir) -> list[dict[str, Any]]:
    """The run's detector rows (issue, description, summary) as :func:`publish` recorded them."""
    path = run.require(run.path / "detectors.jsonl", "store")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------- writing

def publish(run: RunDir, tables: Mapping[str, pa.Table | pl.DataFrame] | None = None, *,
            detectors: list[dict[str, Any]] | None = None) -> Path:
    """Write ``tables`` (name -> an Arrow table or a polars DataFrame) as ``RUN/tables/NAME.parquet``, each
    atomically; record ``detectors`` (the rows of the ``detectors`` table; default: those already
    recorded) in ``detectors.jsonl``; then rebuild ``uim.duckdb`` from the run's artifacts. Scan, link,
    curate and probe all write their tables this way. Returns the database's path."""
    for name, table in (tables or {}).items():
        arrow = table if _is_arrow(table) else table.to_arrow()
        atomic_write_parquet(arrow, table_path(run, name))
    return _rebuild(run, read_detectors(run) if detectors is None else detectors)


def _is_arrow(table: object) -> bool:
    import pyarrow as pa

    return isinstance(table, pa.Table)


def _rebuild(run: RunDir, detectors: list[dict[str, Any]]) -> Path:
    """(Re)create uim.duckdb next to the parquet artifacts; written to a temp file, then renamed."""
    det_path = run.path / "detectors.jsonl"
    atomic_write_text("".join(json.dumps(d, default=str) + "\n" for d in detectors), det_path)
    tmp = run.db.with_name(f".{run.db.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        # written in an older storage format, so that DuckDB clients from STORAGE_VERSION on open it
        con.execute(f"ATTACH '{_quote(tmp)}' AS run (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("USE run")
        _load_tables(con, run, det_path)
        _create_views(con, run, detectors)
    finally:
        con.close()
    os.replace(tmp, run.db)
    return run.db


def _load_tables(con: duckdb.DuckDBPyConnection, run: RunDir, det_path: Path) -> None:
    """samples, neighbors, flags, detectors and every ``RUN/tables/*.parquet``, as tables."""
    con.execute(load_sql("samples"), {"samples_path": str(run.samples)})
    con.execute(load_sql("neighbors"), {"neighbors_path": str(run.neighbors)})
    con.execute(load_sql("flags"), {"flags_path": str(run.flags)})
    con.execute(load_sql("detectors"), {"detectors_path": str(det_path)})
    for path in sorted((run.path / TABLES_DIR).glob("*.parquet")):
        con.execute(load_sql("extra_table").format(name=path.stem), {"path": str(path)})


def _create_views(con: duckdb.DuckDBPyConnection, run: RunDir, detectors: list[dict[str, Any]]) -> None:
    """issue_scores (one union branch per detector that ran), issues, issue_summary, issue_by_group."""
    per_issue = "\n".join(ln for ln in load_sql("issue_scores").splitlines() if not ln.startswith("--"))
    ran = [d for d in detectors if "skipped" not in d.get("summary", {})]
    body = "\nUNION ALL\n".join(per_issue.format(issue=d["issue"]) for d in ran) or load_sql("no_issue_scores")
    con.execute(f"CREATE OR REPLACE VIEW issue_scores AS\n{body}")
    con.execute(load_sql("issues"))
    con.execute(load_sql("issue_summary"))
    if table_path(run, "sample_groups").exists():  # runs from before group columns lack it
        con.execute(load_sql("issue_by_group"))


# ------------------------------------------------------------------------------------------- reading

def connect(run: RunDir, read_only: bool = True, allow_files: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to ``uim.duckdb``. Unless ``allow_files``, SQL cannot reach anything outside the
    database: no files read or written (``read_text``, ``glob``, ``COPY … TO``, ``ATTACH``), no
    extensions installed or loaded, and the settings are locked so a query cannot turn this back on."""
    run.require(run.db, "store")
    config: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if not allow_files:
        config |= {"enable_external_access": False, "lock_configuration": True}
    try:
        return duckdb.connect(str(run.db), read_only=read_only, config=config)
    except duckdb.Error as e:
        raise UimError(f"cannot open {run.db}", got=str(e).splitlines()[0],
                       hint="rerun `uim scan` into this directory if the file is damaged") from None


def query(run: RunDir, sql: str, params: Sequence[Any] | None = None, *, allow_files: bool = False,
          files_flag: str = "allow_files=True") -> pl.DataFrame:
    """``sql`` over ``uim.duckdb`` (read-only, :func:`connect`'s locks) as a polars DataFrame; a failure
    is a one-line :class:`UimError`. ``files_flag`` is how the caller spells ``allow_files`` (the CLI:
    ``--allow-files``), named in the hint when a query reaches for a file."""
    con = connect(run, allow_files=allow_files)
    try:
        rel = con.sql(sql) if params is None else con.sql(sql, params=list(params))
        if rel is None:
            raise UimError("query returned no rows", expected="a SELECT", got=sql[:60])
        return rel.pl()
    except duckdb.PermissionException as e:
        raise UimError(f"query failed: {str(e).splitlines()[0]}", expected="SQL over the run's tables",
                       hint=f"pass {files_flag} to let this query read or write files outside the run") from None
    except duckdb.Error as e:
        raise UimError(f"query failed: {str(e).splitlines()[0]}", hint=QUERY_HINT) from None
    finally:
        con.close()
