"""db: what the report reads from a run's ``uim.duckdb``: its tables and their columns, the rows of a
``sql/report_*.sql`` query, and the detectors with their summaries.

Sections read only through ``records`` (one named query each), so the SQL the report runs is all in
``sql/report_*.sql``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from uimdata.report.blocks import note
from uimdata.store import load_sql

#: table or view name -> its column names
Tables = dict[str, set[str]]


def tables(con: duckdb.DuckDBPyConnection) -> Tables:
    """Tables and views of the database with their column names."""
    out: Tables = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_schema = 'main'").fetchall():
        out.setdefault(table, set()).add(column)
    return out


def records(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> list[dict]:
    """The rows of the query ``sql/{name}.sql`` as dicts."""
    cur = con.execute(load_sql(name), params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def detectors(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """issue -> ``{"description", "summary"}`` for every detector of the run (the summary as the scan
    wrote it: what the detector found and the thresholds it used, or ``{"skipped": why}``)."""
    return {r["issue"]: {"description": r["description"], "summary": json.loads(r["summary"] or "{}")}
            for r in records(con, "report_detectors")}


def missing(tables: Tables, table: str, columns: Sequence[str]) -> dict | None:
    """A note naming the ``columns`` that ``table`` lacks, or None when it has them all."""
    lacking = [c for c in columns if c not in tables[table]]
    if lacking:
        return note(f"table {table} has no column {', '.join(lacking)}: section left out.")
    return None
