"""store: build ``RUN/uim.duckdb`` from the run's parquet artifacts with the queries in ``sql/``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb

from uimdata.rundir import RunDir


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
    det_path.write_text("".join(json.dumps(d, default=str) + "\n" for d in detectors))
    tmp = run.db.with_name(f".{run.db.name}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute(load_sql("samples"), {"samples_path": str(run.samples)})
        con.execute(load_sql("neighbors"), {"neighbors_path": str(run.neighbors)})
        con.execute(load_sql("flags"), {"flags_path": str(run.flags)})
        con.execute(load_sql("detectors"), {"detectors_path": str(det_path)})
        for path in sorted((run.path / "tables").glob("*.parquet")):
            con.execute(load_sql("extra_table").format(name=path.stem), {"path": str(path)})
        per_issue = "\n".join(ln for ln in load_sql("issue_scores").splitlines() if not ln.startswith("--"))
        ran = [d for d in detectors if "skipped" not in d.get("summary", {})]
        body = "\nUNION ALL\n".join(per_issue.format(issue=d["issue"]) for d in ran)
        con.execute(f"CREATE OR REPLACE VIEW issue_scores AS\n{body}")
        con.execute(load_sql("issues"))
        con.execute(load_sql("issue_summary"))
    finally:
        con.close()
    os.replace(tmp, run.db)
    return run.db


def connect(run: RunDir, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    run.require(run.db, "store")
    return duckdb.connect(str(run.db), read_only=read_only)
