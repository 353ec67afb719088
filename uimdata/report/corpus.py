"""corpus: the report's first three sections, about the scanned corpus as a whole: the overview (size,
text lengths, embedding model and index, which detectors ran), the issue summary (rows flagged per
issue) and the worst examples of each issue (with the columns each issue's detector class declares:
``kept_column``, ``example_suggestion``, ``example_columns``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from uimdata.report.blocks import TEXT_CHARS, clip, note, num, paragraph, pct, short, table, text_cell
from uimdata.report.charts import ACCENT, chart, figure, issue_colour, log_axis
from uimdata.report.db import Tables, records

if TYPE_CHECKING:
    from uimdata.detectors.base import Detector

LENGTH_BINS_PER_DECADE = 10  # bins of the text-length histogram


# --- overview -----------------------------------------------------------------------------------
def overview(con: duckdb.DuckDBPyConnection, tables: Tables, meta: dict, detectors: dict[str, dict]) -> dict:
    """Section "Corpus overview"; its ``n_rows`` is the page's row count."""
    ov = records(con, "report_overview")[0]
    blocks: list[dict] = [{"kind": "cards", "items": _cards(con, tables, meta, ov)}]
    histogram = _length_histogram(con)
    if histogram is not None:
        blocks.append(histogram)
    blocks.append(_detector_table(detectors))
    return {"id": "overview", "title": "Corpus overview", "blocks": blocks, "n_rows": ov["n_rows"]}


def _cards(con: duckdb.DuckDBPyConnection, tables: Tables, meta: dict, ov: dict) -> list[tuple[str, str]]:
    """(name, value) cards: rows, labels, text lengths, and the embedding model and index of run.json."""
    cards = [("rows", num(ov["n_rows"]))]
    if "label" in tables["samples"]:
        lab = records(con, "report_label_stats")[0]
        cards += [("labelled rows", num(lab["n_labelled"])), ("classes", num(lab["n_classes"]))]
    cards += [("median length", f"{num(ov['median_chars'], 0)} chars"),
              ("mean length", f"{num(ov['mean_chars'], 0)} chars"),
              ("95th percentile", f"{num(ov['p95_chars'], 0)} chars"),
              ("longest", f"{num(ov['max_chars'])} chars"), ("empty texts", num(ov["n_empty"]))]
    emb = meta.get("embedding") or {}
    cfg = meta.get("config") or {}
    if emb.get("model") or cfg.get("model"):
        cards.append(("embeddings", clip(emb.get("model") or cfg.get("model"), 60)))
    if meta.get("index"):
        cards.append(("kNN index", f"{meta['index']}, k = {cfg.get('k', '?')}"))
    if meta.get("started"):
        cards.append(("scanned", datetime.fromtimestamp(meta["started"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    return cards


def _length_histogram(con: duckdb.DuckDBPyConnection) -> dict | None:
    """Histogram of text lengths over log-spaced bins (counted in SQL); None for an empty corpus."""
    per_decade = LENGTH_BINS_PER_DECADE
    bins = records(con, "report_lengths", {"per_decade": per_decade})
    if not bins:
        return None
    first, last = bins[0]["bin"], bins[-1]["bin"]
    counts = np.zeros(last - first + 1)
    for b in bins:
        counts[b["bin"] - first] = b["n"]
    edges = 10.0 ** (np.arange(first, last + 2) / per_decade)
    fig, ax = figure(8.5, 2.6)
    ax.stairs(counts, edges, fill=True, color=ACCENT, alpha=0.8)
    log_axis(ax)
    ax.set_xlabel("characters per text (log scale)")
    ax.set_ylabel("rows")
    ax.set_title("text lengths")
    return chart(fig, "histogram of text lengths",
                 f"{per_decade} bins per decade; empty and one-character texts share the first bin.")


def _detector_table(detectors: dict[str, dict]) -> dict:
    """Each detector: ran or skipped (and why), and what it flags."""
    rows = []
    for issue, d in detectors.items():
        skipped = d["summary"].get("skipped")
        rows.append([issue, "skipped: " + str(skipped) if skipped else "ran", d["description"] or ""])
    return table(["detector", "status", "what it flags"], rows, cls="compact")


# --- issue summary ------------------------------------------------------------------------------
def issue_summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Section "Issue summary"; its ``issues`` ((issue, rows flagged), in the view's order) order the
    examples and the embedding map's colours."""
    recs = records(con, "report_issue_summary")
    rows = [[r["issue"], num(r["n_flagged"]), pct(r["fraction"]), num(r["mean_score"]), r["description"] or ""]
            for r in recs]
    blocks: list[dict] = []
    if recs:
        blocks.append(_flagged_chart(recs))
    blocks.append(table(["issue", "flagged", "share of rows", "mean score", "description"], rows))
    return {"id": "issues", "title": "Issue summary", "blocks": blocks,
            "issues": [(r["issue"], r["n_flagged"]) for r in recs]}


def _flagged_chart(recs: list[dict]) -> dict:
    """Horizontal bars: rows flagged per issue, annotated with the count and share."""
    fig, ax = figure(8.5, 0.4 * len(recs) + 0.9)
    y = np.arange(len(recs))[::-1]
    n = [r["n_flagged"] for r in recs]
    ax.barh(y, n, color=[issue_colour(i) for i in range(len(recs))])
    ax.set_yticks(y, [short(r["issue"]) for r in recs])
    for yi, r in zip(y, recs):
        ax.annotate(f" {r['n_flagged']:,} ({100 * (r['fraction'] or 0):.1f} %)", (r["n_flagged"], yi),
                    va="center", fontsize=8)
    ax.set_xlim(0, max(max(n), 1) * 1.2)
    ax.set_xlabel("rows flagged")
    ax.set_title("rows flagged per issue")
    return chart(fig, "bar chart of rows flagged per issue")


# --- worst examples -----------------------------------------------------------------------------
def examples(con: duckdb.DuckDBPyConnection, issues: list[tuple[str, int]], per_issue: int) -> dict:
    """Section "Worst examples per issue": the ``per_issue`` lowest-scored rows of each issue."""
    recs = records(con, "report_examples", {"per_issue": per_issue})
    kept = _kept_texts(con, recs)
    by_issue: dict[str, list[dict]] = {}
    for r in recs:
        by_issue.setdefault(r["issue"], []).append(r)
    blocks: list[dict] = [paragraph(f"The {per_issue} lowest-scored flagged rows of each issue "
                                    f"(score in [0, 1], lower is worse); texts cut at {TEXT_CHARS} characters.")]
    for issue, n_flagged in issues:
        rows = by_issue.get(issue, [])
        blocks.append({"kind": "h3", "text": f"{issue}: {n_flagged:,} flagged", "anchor": f"examples-{issue}"})
        blocks.append(_example_table(issue, rows, kept) if rows else note("no rows flagged."))
    if not issues:
        blocks.append(note("no detector ran."))
    return {"id": "examples", "title": "Worst examples per issue", "blocks": blocks}


def _detector(issue: str) -> type[Detector] | None:
    """The registered detector of ``issue`` (None for an issue no detector of this installation has)."""
    from uimdata.detectors import REGISTRY

    return REGISTRY.get(issue)


def _kept_column(issue: str) -> str | None:
    """A duplicate issue's ``flags`` column naming the member that was kept."""
    det = _detector(issue)
    return det.kept_column if det is not None else None


def _kept_texts(con: duckdb.DuckDBPyConnection, recs: list[dict]) -> dict[str, str]:
    """id -> text of the kept member of every duplicate among the examples."""
    kept_ids = sorted({r[col] for r in recs if (col := _kept_column(r["issue"])) and r.get(col)})
    if not kept_ids:
        return {}
    return {r["id"]: r["text"] for r in records(con, "report_rows_by_id", {"ids": kept_ids})}


def _example_table(issue: str, rows: list[dict], kept: dict[str, str]) -> dict:
    """The examples of one issue: duplicates beside their kept member, label issues with the given and
    suggested label, others with their issue's ``example_columns``."""
    det = _detector(issue)
    if det is not None and det.kept_column:
        col = det.kept_column
        columns = ["#", "score", "flagged row", "kept member", "reason"]
        cells = [[r["pos"], num(r["score"]), text_cell(r["text"], r["id"]),
                  text_cell(kept.get(r.get(col), ""), r.get(col) or "–"), r["reason"] or ""] for r in rows]
        cls = "dup"
    elif det is not None and det.example_suggestion and det.suggestion_columns:
        sug, prob = det.suggestion_columns
        columns = ["#", "score", "text", "given label", "suggested label", "reason"]
        cells = [[r["pos"], num(r["score"]), text_cell(r["text"], r["id"]), r.get("label") or "–",
                  f"{r.get(sug) or '–'} (p = {num(r.get(prob), 2)})", r["reason"] or ""] for r in rows]
        cls = "label"  # the layout's style in templates/report.html
    else:
        extra = [(h, c) for h, c in (det.example_columns if det is not None else ()) if c in rows[0]]
        columns = ["#", "score", *[h for h, _ in extra], "text", "reason"]
        cells = [[r["pos"], num(r["score"]), *[num(r[c]) if not isinstance(r[c], str) else r[c] for _, c in extra],
                  text_cell(r["text"], r["id"]), r["reason"] or ""] for r in rows]
        cls = "generic"
    return table(columns, cells, cls=f"examples {cls}")
