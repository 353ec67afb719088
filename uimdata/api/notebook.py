"""What a notebook shows for a bare ``run`` (``Run._repr_html_``): the run's path, rows, embedding model
and index, the issue summary as an HTML table and the skipped detectors; every value HTML-escaped."""

from __future__ import annotations

import os
from collections.abc import Mapping
from html import escape as esc
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def error_html(path: Path, error: Exception) -> str:
    """A run that cannot be read: its path and the one-line error."""
    return f"<div><b>uimdata run</b> {esc(os.fspath(path))}: {esc(str(error))}</div>"


def summary_html(path: Path, meta: Mapping[str, Any], summary: pl.DataFrame) -> str:
    """The head line, the ``issue_summary`` rows as a table, then one line per skipped detector."""
    emb = meta.get("embedding", {}).get("model", "")
    head = (f"<div><b>uimdata run</b> <code>{esc(os.fspath(path))}</code>: {meta.get('rows', 0):,} rows, "
            f"embeddings {esc(str(emb))}, index {esc(str(meta.get('index', '')))}</div>")
    n = max(int(meta.get("rows", 0)), 1)
    rows = "".join(
        f"<tr><td>{esc(str(r['issue']))}</td><td style='text-align:right'>{r['n_flagged']:,}</td>"
        f"<td style='text-align:right'>{100 * r['n_flagged'] / n:.1f}%</td>"
        f"<td style='text-align:right'>{'' if r['mean_score'] is None else format(r['mean_score'], '.3f')}</td>"
        f"<td style='text-align:left'>{esc(str(r['description'] or ''))}</td></tr>"
        for r in summary.iter_rows(named=True))
    table = ("<table><thead><tr><th>issue</th><th>flagged</th><th>%</th><th>mean score</th>"
             f"<th style='text-align:left'>description</th></tr></thead><tbody>{rows}</tbody></table>")
    skipped = "".join(f"<div style='color:#777'>{esc(str(k))}: skipped, {esc(str(v))}</div>"
                      for k, v in (meta.get("skipped") or {}).items())
    return head + table + skipped
