"""Group columns: the sources, domains, datasets and languages a corpus's issues are counted by.

``uim scan --group-col C`` (repeatable) names them; by default they are auto-detected: the metadata
columns named (case-insensitively) ``source``, ``domain``, ``dataset``, ``subset``, ``lang`` or
``language``, the row's detected language (``samples.lang``), the host of a ``url`` column (a new
``samples.url_host`` column, ``www.`` dropped), and ``source_file`` when the corpus has several files.
An auto-detected column is skipped when it is nested or has more than :data:`MAX_GROUPS` distinct values.

The scan writes the long table ``RUN/tables/sample_groups.parquet`` (``id``, ``group_col``, ``group``
as text, NULL kept) which ``uim.duckdb`` loads as ``sample_groups``; the view ``issue_by_group``
(``sql/issue_by_group.sql``) counts every issue per group.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from uimdata.errors import UimError

AUTO_NAMES = ("source", "domain", "dataset", "subset", "lang", "language")
URL_NAMES = ("url", "uri", "link")
#: an auto-detected group column with more distinct values than this is not a grouping
MAX_GROUPS = 10_000


def url_host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return None
    if not host:
        return None
    return host.removeprefix("www.")


def _stringy(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _scalar(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t))


def resolve(samples: pa.Table, given: list[str] | None, metadata: dict[str, str],
            n_files: int = 1) -> tuple[pa.Table, list[str]]:
    """(samples with ``url_host`` added where a url column exists, the group columns as samples names).

    ``given`` names input columns (or samples columns: ``lang``, ``source_file``, ``url_host``); ``[]``
    means no group columns, ``None`` auto-detect."""
    by_input = {k.lower(): v for k, v in metadata.items()}
    url_col = next((by_input[n] for n in URL_NAMES if n in by_input
                    and _stringy(samples.schema.field(by_input[n]).type)), None)
    if url_col is not None and "url_host" not in samples.column_names:
        hosts = pa.array([url_host(u) for u in samples.column(url_col).to_pylist()], pa.string())
        samples = samples.append_column("url_host", hosts)
    names = samples.column_names
    if given is not None:
        out = []
        for g in given:
            col = metadata.get(g, g)
            if col not in names:
                known = sorted(metadata) + [c for c in ("lang", "source_file", "url_host") if c in names]
                raise UimError(f"--group-col {g!r}: no such column", expected=f"one of {known}", got=repr(g),
                               hint="name an input column of the corpus")
            if col not in out:
                out.append(col)
        return samples, out
    auto = ["lang"] if "lang" in names else []
    auto += [by_input[n] for n in AUTO_NAMES if n in by_input]
    if "url_host" in names:
        auto.append("url_host")
    if n_files > 1:
        auto.append("source_file")
    out = []
    for col in auto:
        if col in out or not _scalar(samples.schema.field(col).type):
            continue
        if col != "lang" and pc.count_distinct(samples.column(col)).as_py() > MAX_GROUPS:
            continue
        out.append(col)
    return samples, out


def group_table(samples: pa.Table, cols: list[str]) -> pa.Table:
    """The long table ``sample_groups``: one row per (sample, group column)."""
    ids = samples.column("id").combine_chunks()
    parts = []
    for col in cols:
        values = samples.column(col)
        if _scalar(values.type):
            text = pc.cast(values, pa.string())
        else:
            import json

            text = pa.array([None if v is None else json.dumps(v, default=str, sort_keys=True)
                             for v in values.to_pylist()], pa.string())
        parts.append(pa.table({"id": ids, "group_col": pa.array([col] * len(ids), pa.string()),
                               "group": text}))
    if not parts:
        return pa.table({"id": pa.array([], pa.string()), "group_col": pa.array([], pa.string()),
                         "group": pa.array([], pa.string())})
    return pa.concat_tables(parts).combine_chunks()


# ---------------------------------------------------------------------------------------- reading a run
def has_groups(con) -> bool:  # noqa: ANN001 - a DuckDB connection
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'issue_by_group'")
                .fetchone()[0])


def worst_groups(con, per_issue: int = 3, min_rows: int = 20) -> list[tuple]:  # noqa: ANN001
    """(issue, group_col, group, n_rows, n_flagged, rate, rate_lo, rate_hi, lift), worst first per issue."""
    from uimdata.store import load_sql

    if not has_groups(con):
        return []
    return con.execute(load_sql("worst_groups"), {"per_issue": per_issue, "min_rows": min_rows}).fetchall()


def language_mix(con) -> list[tuple]:  # noqa: ANN001
    """(lang, n_rows, share, mean confidence), largest first; [] for runs without ``samples.lang``."""
    from uimdata.store import load_sql

    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'samples'").fetchall()}
    if "lang" not in cols:
        return []
    return con.execute(load_sql("language_mix")).fetchall()


# ------------------------------------------------------------------------------------------- uim link
def pre_slice_cols(slice_cols: tuple[str, ...], samples: pa.Table, meta: dict, downstream: str) -> list[str]:
    """The ``uim link --slice-col`` names that are not downstream columns but pre-training ones (a group
    column such as ``source`` or ``lang``, or any metadata column): slices of the corpus, not of the
    downstream set. Returned as they were given."""
    if not slice_cols:
        return []
    from uimdata.readers import read_batches

    down_names, _ = read_batches(downstream)
    mapping = meta.get("metadata", {})
    return [c for c in slice_cols if c not in down_names.names and mapping.get(c, c) in samples.column_names]


def pre_slices(col: str, samples: pa.Table, meta: dict, nbr, weights) -> list[tuple]:  # noqa: ANN001
    """Slices by a pre-training column: for each value, its pre-training rows and the downstream rows whose
    neighbours' cosine-weighted vote falls on it. ``(slice_id, kind, key, down rows, pre rows)``."""
    import numpy as np

    from uimdata.knn import neighbour_values, weighted_vote

    name = meta.get("metadata", {}).get(col, col)
    table = group_table(samples.select(["id", name]), [name])
    values = table.column("group").to_pylist()
    keys = sorted({v for v in values if v is not None})
    code = {v: i for i, v in enumerate(keys)}
    codes = np.array([code.get(v, -1) if v is not None else -1 for v in values], np.int64)
    down = weighted_vote(neighbour_values(nbr, codes), weights)
    return [(f"{col}:{v}", col, v, np.flatnonzero(down == i), np.flatnonzero(codes == i))
            for i, v in enumerate(keys)]
