"""store: build ``RUN/uim.duckdb`` from the run's parquet artifacts with the queries in ``sql/``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb

from uimdata.errors import UimError
from uimdata.rundir import RunDir, atomic_write_text

#: the on-disk format of uim.duckdb: DuckDB 1.0.0 and every later version open it
STORAGE_VERSION = "v1.0.0"


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


def read_detectors(run: RunDir) -> list[dict[str, Any]]:
    """The run's detector rows (name, description, summary) as ``build_db`` wrote them."""
    path = run.require(run.path / "detectors.jsonl", "store")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_db(run: RunDir, detectors: list[dict[str, Any]]) -> Path:
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
        con.execute(load_sql("samples"), {"samples_path": str(run.samples)})
        con.execute(load_sql("neighbors"), {"neighbors_path": str(run.neighbors)})
        con.execute(load_sql("flags"), {"flags_path": str(run.flags)})
        con.execute(load_sql("detectors"), {"detectors_path": str(det_path)})
        for path in sorted((run.path / "tables").glob("*.parquet")):
            con.execute(load_sql("extra_table").format(name=path.stem), {"path": str(path)})
        per_issue = "\n".join(ln for ln in load_sql("issue_scores").splitlines() if not ln.startswith("--"))
        ran = [d for d in detectors if "skipped" not in d.get("summary", {})]
        body = "\nUNION ALL\n".join(per_issue.format(issue=d["issue"]) for d in ran) or load_sql("no_issue_scores")
        con.execute(f"CREATE OR REPLACE VIEW issue_scores AS\n{body}")
        con.execute(load_sql("issues"))
        con.execute(load_sql("issue_summary"))
        if (run.path / "tables" / "sample_groups.parquet").exists():  # runs from before group columns lack it
            con.execute(load_sql("issue_by_group"))
    finally:
        con.close()
    os.replace(tmp, run.db)
    return run.db


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
