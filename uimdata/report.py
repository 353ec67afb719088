"""report: ``uim report RUN`` writes one self-contained HTML file describing a run.

Everything is inlined: the charts are matplotlib figures embedded as ``data:`` URIs (SVG for bar
charts and heat maps, PNG for the embedding map), the CSS sits in a ``<style>`` element and the page
has no script at all. A Content-Security-Policy meta forbids every network load and every script,
and all text (corpus rows, labels, reasons, descriptions) goes through Jinja2's autoescape, so a
corpus holding ``<script>`` or ``<img onerror=...>`` shows as literal text.

Big corpora are sampled, never dumped: the worst ``examples`` rows per issue with texts cut at
``TEXT_CHARS``, at most ``MAP_POINTS`` uniformly sampled + ``MAP_FLAGGED`` flagged points on the
embedding map, read from at most ``MAP_SHARDS`` embedding shards, the first ``MAX_SLICES`` slices.

Sections: overview, issue summary, worst examples, classes and long tail, embedding map, label
noise; and, only when their tables exist in ``uim.duckdb``: ``slices`` and ``issue_attribution``
(``uim link``), ``probe_results`` (``uim probe``). Only the columns named in ``*_COLUMNS`` are read.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import uimdata
from uimdata.errors import UimError
from uimdata.groups import report_section
from uimdata.rundir import RunDir, atomic_write_text
from uimdata.store import connect, load_sql

EXAMPLES = 10          # worst rows shown per issue
TEXT_CHARS = 600       # characters of a corpus text shown
LABEL_CHARS = 40       # characters of a label / description inside a chart
MAP_POINTS = 3000      # uniformly sampled rows on the embedding map
MAP_FLAGGED = 1000     # flagged rows added to them
MAP_SHARDS = 8         # embedding shards read at most (100,000 rows each)
CLASS_BARS = 80        # up to this many classes: one bar each; more: a rank-frequency plot
MAX_CLASSES = 5000     # classes read for the class chart
NOISE_LABELS = 15      # given x suggested labels in the label-noise heat map
NOISE_CELLS = 2000     # label-noise cells read
MAX_SLICES = 15
CLUSTER_ROWS = 15      # smallest clusters listed

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'; "
       "base-uri 'none'; form-action 'none'")

SLICE_COLUMNS = ("slice_id", "kind", "rank", "n_down", "n_err", "error_rate", "lift", "lift_lo", "lift_hi",
                 "score", "n_pre", "dominant_issue", "description")
ATTRIBUTION_COLUMNS = ("issue", "odds_ratio", "or_lo", "or_hi", "p_value", "significant")
PROBE_COLUMNS = ("policy", "metric", "value", "ci_lo", "ci_hi", "n_eval", "rows_dropped", "rows_relabelled",
                 "rows_reweighted")

#: matplotlib settings for every chart: text kept as text in SVG (smaller files), deterministic SVG ids.
RC = {"svg.fonttype": "none", "svg.hashsalt": "uimdata", "font.size": 9,
      "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8,
      "legend.frameon": False, "figure.dpi": 100}
ISSUE_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#1f77b4", "#2ca02c", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#7f7f7f")
POLICY_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#bcbd22", "#8c564b")
GREY, ACCENT, TAIL, HEAD = "#b8b8b8", "#1f77b4", "#ff7f0e", "#1f77b4"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


# --- entry points ---------------------------------------------------------------------------------
def write_report(run: RunDir | str | Path, out: str | Path | None = None, *, examples: int = EXAMPLES,
                 seed: int = 0) -> Path:
    """Render the report of ``run`` and write it (atomically) to ``out``, default ``RUN/report.html``."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    path = Path(out) if out is not None else run.path / "report.html"
    if out is not None:  # RUN/report.html is the run's own (docs/run-directory.md)
        _check_target(path)
    atomic_write_text(render_report(run, examples=examples, seed=seed), path)
    return path


#: the mark every report carries in its <head>; a file without it was not written by `uim report`
GENERATOR = '<meta name="generator" content="uimdata">'


def _check_target(path: Path) -> None:
    """Replace only a report written by uimdata: never a folder or another file of the user's."""
    if path.is_dir():
        raise UimError(f"-o {path} is a folder", expected="an HTML file path",
                       hint=f"e.g. -o {path / 'report.html'}")
    if path.exists():
        with path.open("rb") as f:
            head = f.read(4096)
        if GENERATOR.encode() not in head:
            raise UimError(f"-o {path} exists and is not a uimdata report", expected="a new path or a report "
                           "written by `uim report`", got="another file",
                           hint="pass a new path; uimdata never replaces files it did not write")


def render_report(run: RunDir, *, examples: int = EXAMPLES, seed: int = 0) -> str:
    """The report as one HTML string."""
    import jinja2
    import matplotlib

    con = connect(run)
    try:
        tables = _tables(con)
        meta = json.loads(run.meta.read_text()) if run.meta.exists() else {}
        with matplotlib.rc_context(RC), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. glyphs missing from the font for some labels
            summary = _issue_summary(con)
            detectors = _detectors(con)
            sections = [
                _overview(con, tables, meta, detectors),
                summary,
                _examples(con, summary["issues"], examples),
                _classes(con, tables, detectors),
                _embedding_map(run, con, [i for i, _ in summary["issues"]], seed),
                _label_noise(con, tables, detectors),
            ]
            sections += [s for s in (report_section(con),) if s is not None]  # issues by source (groups.py)
            sections += [s for s in (_slices(con, tables), _attribution(con, tables), _probe(con, tables))
                         if s is not None]
    finally:
        con.close()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    n_rows = sections[0]["n_rows"]
    return env.get_template("report.html").render(
        csp=CSP, title=f"uim report: {run.path.name}", run_path=str(run.path), version=uimdata.__version__,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), n_rows=f"{n_rows:,}",
        sections=sections)


# --- helpers --------------------------------------------------------------------------------------
def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Tables and views of the database with their column names."""
    out: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_schema = 'main'").fetchall():
        out.setdefault(table, set()).add(column)
    return out


def _records(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> list[dict]:
    cur = con.execute(load_sql(name), params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _clip(text: Any, n: int = TEXT_CHARS) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[:n] + f" … [{len(s) - n:,} more characters]"


def _short(text: Any, n: int = LABEL_CHARS) -> str:
    """A one-line label for a chart: no control characters (invalid in SVG), at most n characters, and
    every '$' escaped so that matplotlib never reads corpus text as mathtext."""
    s = " ".join(_CONTROL.sub("\ufffd", "" if text is None else str(text)).split())
    s = s if len(s) <= n else s[:n - 1] + "…"
    return s.replace("$", r"\$")


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–" if x is None or math.isnan(x) else ("∞" if x > 0 else "−∞")
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    return f"{float(x):.{digits}f}"


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * float(x):.1f} %"


def _ci(value: Any, lo: Any, hi: Any, digits: int = 2) -> str:
    return f"{_num(value, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _float(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, ncols)


def _log_axis(ax, which: str = "x") -> None:
    """Log scale with plain tick labels (1, 2, 3, 5, 10, ...), not 10^k."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4g}"))
    axis.set_minor_formatter(NullFormatter())


def _uri(fig, fmt: str = "svg") -> str:
    buf = io.BytesIO()
    if fmt == "svg":
        fig.savefig(buf, format="svg", metadata={"Date": None})
        return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _chart(fig, alt: str, caption: str = "", fmt: str = "svg") -> dict:
    return {"kind": "chart", "uri": _uri(fig, fmt), "alt": alt, "caption": caption}


def _table(columns: Sequence[str], rows: list[list[Any]], caption: str = "", cls: str = "") -> dict:
    return {"kind": "table", "columns": list(columns), "rows": rows, "caption": caption, "cls": cls}


def _note(text: str) -> dict:
    return {"kind": "note", "text": text}


def _text_cell(text: Any, head: str = "") -> dict:
    return {"head": head, "text": _clip(text), "cls": "txt"}


def _err_bars(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Asymmetric error bars for matplotlib (missing bounds draw no bar)."""
    below = np.where(np.isfinite(lo), values - lo, 0.0)
    above = np.where(np.isfinite(hi), hi - values, 0.0)
    return np.clip(np.vstack([below, above]), 0, None)


def _missing(tables: dict[str, set[str]], table: str, columns: Sequence[str]) -> dict | None:
    lacking = [c for c in columns if c not in tables[table]]
    if lacking:
        return _note(f"table {table} has no column {', '.join(lacking)}: section left out.")
    return None


# --- sections -------------------------------------------------------------------------------------
def _detectors(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    return {r["issue"]: {"description": r["description"], "summary": json.loads(r["summary"] or "{}")}
            for r in _records(con, "report_detectors")}


def _overview(con, tables: dict[str, set[str]], meta: dict, detectors: dict[str, dict]) -> dict:
    ov = _records(con, "report_overview")[0]
    cards = [("rows", _num(ov["n_rows"]))]
    if "label" in tables["samples"]:
        lab = _records(con, "report_label_stats")[0]
        cards += [("labelled rows", _num(lab["n_labelled"])), ("classes", _num(lab["n_classes"]))]
    cards += [("median length", f"{_num(ov['median_chars'], 0)} chars"),
              ("mean length", f"{_num(ov['mean_chars'], 0)} chars"),
              ("95th percentile", f"{_num(ov['p95_chars'], 0)} chars"),
              ("longest", f"{_num(ov['max_chars'])} chars"), ("empty texts", _num(ov["n_empty"]))]
    emb = meta.get("embedding") or {}
    cfg = meta.get("config") or {}
    if emb.get("model") or cfg.get("model"):
        cards.append(("embeddings", _clip(emb.get("model") or cfg.get("model"), 60)))
    if meta.get("index"):
        cards.append(("kNN index", f"{meta['index']}, k = {cfg.get('k', '?')}"))
    if meta.get("started"):
        cards.append(("scanned", datetime.fromtimestamp(meta["started"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    blocks: list[dict] = [{"kind": "cards", "items": cards}]

    per_decade = 10
    bins = _records(con, "report_lengths", {"per_decade": per_decade})
    if bins:
        first, last = bins[0]["bin"], bins[-1]["bin"]
        counts = np.zeros(last - first + 1)
        for b in bins:
            counts[b["bin"] - first] = b["n"]
        edges = 10.0 ** (np.arange(first, last + 2) / per_decade)
        fig, ax = _figure(8.5, 2.6)
        ax.stairs(counts, edges, fill=True, color=ACCENT, alpha=0.8)
        _log_axis(ax)
        ax.set_xlabel("characters per text (log scale)")
        ax.set_ylabel("rows")
        ax.set_title("text lengths")
        blocks.append(_chart(fig, "histogram of text lengths",
                             f"{per_decade} bins per decade; empty and one-character texts share the first bin."))
    rows = []
    for issue, d in detectors.items():
        skipped = d["summary"].get("skipped")
        rows.append([issue, "skipped: " + str(skipped) if skipped else "ran", d["description"] or ""])
    blocks.append(_table(["detector", "status", "what it flags"], rows, cls="compact"))
    return {"id": "overview", "title": "Corpus overview", "blocks": blocks, "n_rows": ov["n_rows"]}


def _issue_summary(con) -> dict:
    recs = _records(con, "report_issue_summary")
    rows = [[r["issue"], _num(r["n_flagged"]), _pct(r["fraction"]), _num(r["mean_score"]), r["description"] or ""]
            for r in recs]
    blocks: list[dict] = []
    if recs:
        fig, ax = _figure(8.5, 0.4 * len(recs) + 0.9)
        y = np.arange(len(recs))[::-1]
        n = [r["n_flagged"] for r in recs]
        ax.barh(y, n, color=[ISSUE_COLOURS[i % len(ISSUE_COLOURS)] for i in range(len(recs))])
        ax.set_yticks(y, [_short(r["issue"]) for r in recs])
        for yi, r in zip(y, recs):
            ax.annotate(f" {r['n_flagged']:,} ({100 * (r['fraction'] or 0):.1f} %)", (r["n_flagged"], yi),
                        va="center", fontsize=8)
        ax.set_xlim(0, max(max(n), 1) * 1.2)
        ax.set_xlabel("rows flagged")
        ax.set_title("rows flagged per issue")
        blocks.append(_chart(fig, "bar chart of rows flagged per issue"))
    blocks.append(_table(["issue", "flagged", "share of rows", "mean score", "description"], rows))
    return {"id": "issues", "title": "Issue summary", "blocks": blocks,
            "issues": [(r["issue"], r["n_flagged"]) for r in recs]}


_EXTRA = {  # issue -> (column header, flags column) shown next to the text
    "corrupted": [("rule", "corrupted_rule")],
    "outlier": [("signal", "outlier_signal")],
    "long_tail": [("cluster", "cluster_id"), ("cluster size", "cluster_size")],
    "off_target": [("reference cosine", "reference_cosine")],
}
_KEPT = {"exact_duplicate": "duplicate_of", "near_duplicate": "near_duplicate_of"}


def _examples(con, issues: list[tuple[str, int]], per_issue: int) -> dict:
    recs = _records(con, "report_examples", {"per_issue": per_issue})
    kept_ids = sorted({r[_KEPT[r["issue"]]] for r in recs if r["issue"] in _KEPT and r.get(_KEPT[r["issue"]])})
    kept = {r["id"]: r["text"] for r in _records(con, "report_rows_by_id", {"ids": kept_ids})} if kept_ids else {}
    by_issue: dict[str, list[dict]] = {}
    for r in recs:
        by_issue.setdefault(r["issue"], []).append(r)
    blocks: list[dict] = [{"kind": "p", "text": f"The {per_issue} lowest-scored flagged rows of each issue "
                           f"(score in [0, 1], lower is worse); texts cut at {TEXT_CHARS} characters."}]
    for issue, n_flagged in issues:
        rows = by_issue.get(issue, [])
        blocks.append({"kind": "h3", "text": f"{issue}: {n_flagged:,} flagged", "anchor": f"examples-{issue}"})
        if not rows:
            blocks.append(_note("no rows flagged."))
            continue
        if issue in _KEPT:
            columns = ["#", "score", "flagged row", "kept member", "reason"]
            table = [[r["pos"], _num(r["score"]), _text_cell(r["text"], r["id"]),
                      _text_cell(kept.get(r.get(_KEPT[issue]), ""), r.get(_KEPT[issue]) or "–"),
                      r["reason"] or ""] for r in rows]
            cls = "dup"
        elif issue == "label":
            columns = ["#", "score", "text", "given label", "suggested label", "reason"]
            table = [[r["pos"], _num(r["score"]), _text_cell(r["text"], r["id"]), r.get("label") or "–",
                      f"{r.get('suggested_label') or '–'} (p = {_num(r.get('suggested_label_prob'), 2)})",
                      r["reason"] or ""] for r in rows]
            cls = "label"
        else:
            extra = [(h, c) for h, c in _EXTRA.get(issue, []) if c in rows[0]]
            columns = ["#", "score", *[h for h, _ in extra], "text", "reason"]
            table = [[r["pos"], _num(r["score"]), *[_num(r[c]) if not isinstance(r[c], str) else r[c]
                                                     for _, c in extra],
                      _text_cell(r["text"], r["id"]), r["reason"] or ""] for r in rows]
            cls = "generic"
        blocks.append(_table(columns, table, cls=f"examples {cls}"))
    if not issues:
        blocks.append(_note("no detector ran."))
    return {"id": "examples", "title": "Worst examples per issue", "blocks": blocks}


def _classes(con, tables: dict[str, set[str]], detectors: dict[str, dict]) -> dict:
    blocks: list[dict] = []
    tail_info = detectors.get("long_tail", {}).get("summary", {})
    tail = set(tail_info.get("tail_classes") or [])
    head = set(tail_info.get("head_classes") or [])
    if "label" not in tables["samples"]:
        blocks.append(_note("the corpus has no label column."))
    else:
        recs = _records(con, "report_classes", {"max_classes": MAX_CLASSES})
        if not recs:
            blocks.append(_note("every label is missing."))
        else:
            n = np.array([r["n"] for r in recs], dtype=float)
            colours = [TAIL if r["label"] in tail else HEAD if r["label"] in head else GREY for r in recs]
            if len(recs) <= CLASS_BARS:
                fig, ax = _figure(min(1.2 + 0.16 * len(recs), 12) + 1.5, 3.6)
                x = np.arange(len(recs))
                ax.bar(x, n, color=colours, width=0.8)
                ax.set_xticks(x, [_short(r["label"], 28) for r in recs], rotation=90, fontsize=7)
                ax.set_xlim(-0.7, len(recs) - 0.3)
            else:
                fig, ax = _figure(8.5, 3.4)
                ax.scatter(np.arange(1, len(recs) + 1), n, c=colours, s=6)
                _log_axis(ax)
                _log_axis(ax, "y")
                ax.set_xlabel(f"class rank (largest {len(recs):,} classes)")
            ax.set_ylabel("rows")
            ax.set_title("rows per class, largest first")
            handles = [_patch(c, t) for c, t in ((HEAD, "head: largest classes holding 80 % of rows"),
                                                  (GREY, "middle"), (TAIL, "tail: rare classes")) if c in colours]
            if tail or head:
                ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            blocks.append(_chart(fig, "bar chart of rows per class"))
            total = n.sum()
            tail_rows = [[r["label"], _num(r["n"]), _pct(r["n"] / total)] for r in recs if r["label"] in tail]
            if tail_rows:
                blocks.append(_table(["tail class", "rows", "share of labelled rows"], tail_rows,
                                     caption=tail_info.get("tail_rule", ""), cls="compact"))
            elif "long_tail" in detectors and not tail_info.get("skipped"):
                blocks.append(_note("no class is rare enough to count as tail."))
    if "clusters" in tables:
        blocks += _cluster_blocks(_records(con, "report_clusters"), tail_info)
    elif "long_tail" not in detectors or tail_info.get("skipped"):
        blocks.append(_note("long_tail did not run: no clusters."))
    return {"id": "classes", "title": "Classes and long tail", "blocks": blocks}


def _patch(colour: str, label: str):
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


def _cluster_blocks(recs: list[dict], tail_info: dict) -> list[dict]:
    if not recs:
        return [_note("no clusters.")]
    sizes = np.array([r["size"] for r in recs], dtype=float)
    rare = [bool(r["is_rare"]) for r in recs]
    fig, ax = _figure(8.5, 2.6)
    x = np.arange(len(recs))
    ax.bar(x, sizes, color=[TAIL if r else ACCENT for r in rare], width=0.85)
    median = tail_info.get("median_cluster_size") or float(np.median(sizes))
    ax.axhline(0.25 * median, color="#444", lw=0.8, ls="--", label="rare below 0.25 × the median cluster size")
    ax.legend(loc="upper right")
    ax.set_xticks([])
    ax.set_xlabel(f"{len(recs):,} k-means clusters of the embedding space, largest first")
    ax.set_ylabel("rows")
    ax.set_title("cluster sizes (rare regions in orange)")
    smallest = sorted(recs, key=lambda r: (not r["is_rare"], r["size"], r["cluster_id"]))[:CLUSTER_ROWS]
    table = [[r["cluster_id"], _num(r["size"]), _num(r["density"]), r["top_label"] or "–",
              _pct(r["top_label_share"]) if r["top_label_share"] is not None else "–",
              "yes" if r["is_rare"] else ""] for r in smallest]
    n_rare = sum(rare)
    return [_chart(fig, "bar chart of cluster sizes"),
            _table(["cluster", "rows", "density", "top label", "top label share", "rare"], table,
                   caption=f"{n_rare} rare cluster(s) of {len(recs)}; the {len(smallest)} smallest listed.",
                   cls="compact")]


def _sample_positions(counts: list[int], flagged: np.ndarray, rng: np.random.Generator
                      ) -> tuple[list[int], dict[int, np.ndarray], int, int]:
    """Pick shards (all, or MAP_SHARDS at random) and the rows of them to draw.

    Returns the chosen shards, their local row indices, and how many uniform / flagged rows were picked.
    """
    starts = np.concatenate([[0], np.cumsum(counts)])
    shards = list(range(len(counts)))
    if len(shards) > MAP_SHARDS:
        shards = sorted(rng.choice(len(shards), MAP_SHARDS, replace=False).tolist())
    pool = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in shards]) if shards else np.array([])
    uniform = rng.choice(pool, min(MAP_POINTS, len(pool)), replace=False) if len(pool) else pool
    flagged = flagged[np.isin(flagged, pool)]
    if len(flagged) > MAP_FLAGGED:
        flagged = rng.choice(flagged, MAP_FLAGGED, replace=False)
    picked = np.union1d(uniform, flagged).astype(np.int64)
    local = {s: picked[(picked >= starts[s]) & (picked < starts[s + 1])] - starts[s] for s in shards}
    n_flag_only = len(np.setdiff1d(flagged, uniform))
    return shards, local, len(uniform), n_flag_only


def _embedding_map(run: RunDir, con, issue_order: list[str], seed: int) -> dict:
    section = {"id": "map", "title": "Embedding map", "blocks": []}
    files = sorted(run.embeddings_dir.glob("part-*.parquet")) if run.embeddings_dir.is_dir() else []
    if not files:
        section["blocks"].append(_note("the run has no embeddings."))
        return section
    rng = np.random.default_rng(seed)
    counts = [pq.ParquetFile(f).metadata.num_rows for f in files]
    flagged = np.array([r["row"] for r in _records(con, "report_flagged_rows")], dtype=np.int64)
    shards, local, n_uniform, n_flagged = _sample_positions(counts, flagged, rng)
    ids: list[str] = []
    parts = []
    for s in shards:
        if not len(local[s]):
            continue
        t = pq.read_table(files[s], columns=["id", "embedding"]).take(pa.array(local[s]))
        ids += t.column("id").to_pylist()
        col = t.column("embedding").combine_chunks()
        parts.append(col.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(t), -1))
    x = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.float32)
    if len(x) < 3:
        section["blocks"].append(_note("too few rows for a map."))
        return section
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed)
    xy = pca.fit_transform(x)
    ev = pca.explained_variance_ratio_
    info = {r["id"]: r for r in _records(con, "report_map_points", {"ids": ids})}
    issue = np.array([info.get(i, {}).get("issue") or "" for i in ids], dtype=object)
    has_clusters = any("cluster_id" in r for r in info.values())
    fig, axes = _figure(11.5, 5.2, ncols=2 if has_clusters else 1)
    axes = np.atleast_1d(axes)
    ax = axes[0]
    clean = issue == ""
    ax.scatter(xy[clean, 0], xy[clean, 1], s=4, c=GREY, alpha=0.5, linewidths=0, label=f"no issue ({clean.sum():,})")
    order = [i for i in issue_order if i in set(issue)] + sorted(set(issue) - set(issue_order) - {""})
    for k, name in enumerate(order):
        m = issue == name
        ax.scatter(xy[m, 0], xy[m, 1], s=12, color=ISSUE_COLOURS[k % len(ISSUE_COLOURS)], alpha=0.9,
                   linewidths=0, label=f"{_short(name)} ({m.sum():,})")
    ax.legend(loc="best", markerscale=1.6)
    ax.set_title("coloured by issue")
    if has_clusters:
        ax = axes[1]
        cid = np.array([_float(info.get(i, {}).get("cluster_id")) for i in ids])
        ok = np.isfinite(cid)
        import matplotlib
        from matplotlib import patheffects

        cmap = matplotlib.colormaps["tab20"]
        ax.scatter(xy[~ok, 0], xy[~ok, 1], s=4, c=GREY, linewidths=0)
        ax.scatter(xy[ok, 0], xy[ok, 1], s=5, c=cmap((cid[ok].astype(int) % 20) / 19.999), linewidths=0)
        clusters = np.unique(cid[ok]).astype(int)
        if len(clusters) <= 60:
            for c in clusters:
                cx, cy = np.median(xy[cid == c], axis=0)
                ax.annotate(str(c), (cx, cy), fontsize=7, ha="center", va="center", color="#111",
                            path_effects=[patheffects.withStroke(linewidth=2, foreground="white")])
        ax.set_title(f"coloured by k-means cluster ({len(clusters):,} clusters, ids at their medians)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"PC1 ({100 * ev[0]:.1f} % of variance)")
        ax.set_ylabel(f"PC2 ({100 * ev[1]:.1f} % of variance)" if len(ev) > 1 else "PC2")
    total = sum(counts)
    where = f" from {len(shards)} of {len(files)} embedding shards" if len(shards) < len(files) else ""
    caption = (f"PCA projection of {len(ids):,} of {total:,} rows{where}: {n_uniform:,} sampled uniformly"
               f" plus {n_flagged:,} more flagged rows. A row with several issues takes its lowest-scored one.")
    section["blocks"].append(_chart(fig, "2-D PCA map of the embedding space", caption, fmt="png"))
    return section


def _label_noise(con, tables: dict[str, set[str]], detectors: dict[str, dict]) -> dict:
    section = {"id": "label-noise", "title": "Label noise", "blocks": []}
    blocks = section["blocks"]
    label_info = detectors.get("label", {}).get("summary", {})
    if "label_noise_matrix" not in tables:
        blocks.append(_note("the label detector did not run"
                            + (f" ({label_info['skipped']})." if label_info.get("skipped") else ".")))
        return section
    if label_info.get("estimated_noise_rate") is not None:
        blocks.append({"kind": "p", "text": f"Estimated label-noise rate {_pct(label_info['estimated_noise_rate'])} "
                       f"(confident joint over {label_info.get('label_model', '?')} out-of-fold probabilities)."})
    cells = _records(con, "report_label_noise", {"max_cells": NOISE_CELLS})
    if not cells:
        blocks.append(_note("the confident joint has no off-diagonal cell: no label looks swapped."))
        return section
    given_tot: dict[str, int] = {}
    for c in cells:
        given_tot[c["given_label"]] = given_tot.get(c["given_label"], 0) + c["count"]
    given = sorted(given_tot, key=lambda g: (-given_tot[g], g))[:NOISE_LABELS]
    sugg_tot: dict[str, int] = {}
    for c in cells:
        if c["given_label"] in given:
            sugg_tot[c["suggested_label"]] = sugg_tot.get(c["suggested_label"], 0) + c["count"]
    sugg = sorted(sugg_tot, key=lambda s: (-sugg_tot[s], s))[:NOISE_LABELS]
    m = np.zeros((len(given), len(sugg)))
    gi, si = {g: i for i, g in enumerate(given)}, {s: i for i, s in enumerate(sugg)}
    for c in cells:
        if c["given_label"] in gi and c["suggested_label"] in si:
            m[gi[c["given_label"]], si[c["suggested_label"]]] = c["count"]
    fig, ax = _figure(max(5.0, 0.45 * len(sugg) + 3.2), max(3.2, 0.36 * len(given) + 2.2))
    im = ax.imshow(m, cmap="Blues", aspect="auto")
    ax.set_xticks(np.arange(len(sugg)), [_short(s, 28) for s in sugg], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(given)), [_short(g, 28) for g in given], fontsize=8)
    ax.set_xlabel("suggested label")
    ax.set_ylabel("given label")
    vmax = m.max() or 1
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7, color="white" if v > vmax / 2 else "#222")
    fig.colorbar(im, ax=ax, shrink=0.8, label="rows")
    ax.set_title("label-noise matrix: given vs suggested label (off-diagonal counts)")
    ax.spines[:].set_visible(False)
    blocks.append(_chart(fig, "heat map of the label-noise matrix",
                         f"The {len(given)} given labels with the most suspected errors and the {len(sugg)} labels"
                         " they are most often suggested as."))
    blocks.append(_table(["given label", "suggested label", "rows", "share of given"],
                         [[c["given_label"], c["suggested_label"], _num(c["count"]), _pct(c["fraction_of_given"])]
                          for c in cells[:10]], caption="largest cells", cls="compact"))
    return section


def _optional(con, tables: dict[str, set[str]], table: str, sid: str, title: str, columns, query: str,
              empty: str, params: dict | None = None) -> tuple[dict | None, list[dict]]:
    """An optional section (its table exists only after link / probe): the section and its records, or
    the section with a note (missing columns, no rows) and no records."""
    if table not in tables:
        return None, []
    section = {"id": sid, "title": title, "blocks": []}
    missing = _missing(tables, table, columns)
    if missing:
        section["blocks"].append(missing)
        return section, []
    recs = _records(con, query, params) if params else _records(con, query)
    if not recs:
        section["blocks"].append(_note(empty))
    return section, recs


def _slices(con, tables: dict[str, set[str]]) -> dict | None:
    section, recs = _optional(con, tables, "slices", "slices", "Error slices (uim link)", SLICE_COLUMNS,
                              "report_slices", "no slices.", {"max_slices": MAX_SLICES})
    if not recs:
        return section
    section["blocks"].append({"kind": "p", "text": "The top slices of the downstream evaluation by rank "
                              "(tier, then the lower bound of the lift; see `uim link`). Lift = the slice's error "
                              "rate over the overall error rate, with its confidence interval."})
    lift = np.array([_float(r["lift"]) for r in recs])
    lo, hi = np.array([_float(r["lift_lo"]) for r in recs]), np.array([_float(r["lift_hi"]) for r in recs])
    fig, ax = _figure(8.5, 0.36 * len(recs) + 1.1)
    y = np.arange(len(recs))[::-1]
    kinds = sorted({str(r["kind"]) for r in recs})
    for k, kind in enumerate(kinds):
        m = np.array([str(r["kind"]) == kind for r in recs])
        ax.errorbar(lift[m], y[m], xerr=_err_bars(lift[m], lo[m], hi[m]), fmt="o", ms=5, capsize=3,
                    color=ISSUE_COLOURS[k % len(ISSUE_COLOURS)], label=_short(kind))
    ax.axvline(1.0, color="#444", lw=0.8, ls="--")
    ax.set_yticks(y, [_short(f"#{r['rank']} {r['description'] or r['slice_id']}", 55) for r in recs], fontsize=8)
    if np.all(np.nan_to_num(np.concatenate([lift, lo, hi]), nan=1.0) > 0):
        _log_axis(ax)
    ax.set_xlabel("error lift (1 = the overall error rate)")
    ax.set_title(f"top {len(recs)} slices: error lift with confidence interval")
    ax.legend(loc="lower right", title="kind")
    section["blocks"].append(_chart(fig, "error lift per slice with confidence intervals"))
    rows = [[r["rank"], {"head": r["slice_id"], "text": _clip(r["description"], 300), "cls": "txt"}, r["kind"],
             _num(r["n_down"]), _num(r["n_err"]), _pct(r["error_rate"]), _ci(r["lift"], r["lift_lo"], r["lift_hi"]),
             _num(r["score"]), _num(r["n_pre"]), r["dominant_issue"] or "–"] for r in recs]
    section["blocks"].append(_table(["rank", "slice", "kind", "downstream rows", "errors", "error rate",
                                     "lift [CI]", "score", "pre-training rows", "dominant issue"], rows))
    return section


def _attribution(con, tables: dict[str, set[str]]) -> dict | None:
    section, recs = _optional(con, tables, "issue_attribution", "attribution", "Issue attribution (uim link)",
                              ATTRIBUTION_COLUMNS, "report_attribution", "no issues attributed.")
    if not recs:
        return section
    section["blocks"].append({"kind": "p", "text": "Odds ratio of a downstream error when the linked pre-training "
                              "rows carry an issue, with its confidence interval (log scale; 1 = no effect)."})
    odds = np.array([_float(r["odds_ratio"]) for r in recs])
    lo, hi = np.array([_float(r["or_lo"]) for r in recs]), np.array([_float(r["or_hi"]) for r in recs])
    finite = np.concatenate([odds, lo, hi])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    floor, ceil = (finite.min() / 2, finite.max() * 2) if len(finite) else (0.1, 10.0)
    odds, lo, hi = (np.clip(np.nan_to_num(a, nan=np.nan, posinf=ceil, neginf=floor), floor, ceil)
                    for a in (odds, lo, hi))
    sig = np.array([bool(r["significant"]) for r in recs])
    fig, ax = _figure(8.5, 0.4 * len(recs) + 1.1)
    y = np.arange(len(recs))[::-1]
    for m, colour, label in ((sig, "#d62728", "significant"), (~sig, "#7f7f7f", "not significant")):
        if m.any():
            ax.errorbar(odds[m], y[m], xerr=_err_bars(odds[m], lo[m], hi[m]), fmt="s", ms=5, capsize=3,
                        color=colour, label=label)
    ax.axvline(1.0, color="#444", lw=0.8, ls="--")
    _log_axis(ax)
    ax.set_yticks(y, [_short(r["issue"]) for r in recs])
    ax.set_xlabel("odds ratio of a downstream error (log scale)")
    ax.set_title("issue attribution: odds ratio with confidence interval")
    ax.legend(loc="lower right")
    section["blocks"].append(_chart(fig, "odds ratio per issue with confidence intervals"))
    rows = [[r["issue"], _ci(r["odds_ratio"], r["or_lo"], r["or_hi"]),
             "–" if r["p_value"] is None else f"{r['p_value']:.2g}", _num(r["significant"])] for r in recs]
    section["blocks"].append(_table(["issue", "odds ratio [CI]", "p-value", "significant"], rows, cls="compact"))
    return section


def _probe(con, tables: dict[str, set[str]]) -> dict | None:
    section, recs = _optional(con, tables, "probe_results", "probe", "Probe: raw vs curated (uim probe)",
                              PROBE_COLUMNS, "report_probe", "no probe results.")
    if not recs:
        return section
    policies = sorted({str(r["policy"]) for r in recs}, key=lambda p: (p != "raw", p))
    known = ("accuracy", "macro_accuracy", "tail_accuracy", "tail10_accuracy", "slice_accuracy")
    metrics = sorted({str(r["metric"]) for r in recs}, key=lambda m: (known.index(m) if m in known else len(known), m))
    at = {(str(r["policy"]), str(r["metric"])): r for r in recs}
    fig, ax = _figure(max(6.0, 1.3 * len(metrics) + 2.5), 3.4)
    width = 0.8 / len(policies)
    x = np.arange(len(metrics))
    values = []
    for k, p in enumerate(policies):
        rs = [at.get((p, mt)) for mt in metrics]
        v = np.array([_float(r["value"]) if r else np.nan for r in rs])
        lo = np.array([_float(r["ci_lo"]) if r else np.nan for r in rs])
        hi = np.array([_float(r["ci_hi"]) if r else np.nan for r in rs])
        values.append(np.concatenate([v, lo, hi]))
        ax.bar(x + (k - (len(policies) - 1) / 2) * width, np.nan_to_num(v), width * 0.95,
               yerr=_err_bars(np.nan_to_num(v), lo, hi), capsize=3, label=_short(p),
               color=GREY if p == "raw" else POLICY_COLOURS[k % len(POLICY_COLOURS)])
    ax.set_xticks(x, [_short(mt, 24) for mt in metrics])
    allv = np.concatenate(values)
    allv = allv[np.isfinite(allv)]
    if len(allv) and allv.min() >= 0 and allv.max() <= 1:
        ax.set_ylim(0, 1.05)
    ax.set_ylabel("value")
    ax.set_title("probe metrics per policy, with confidence intervals")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="policy")
    section["blocks"].append(_chart(fig, "grouped bar chart of probe metrics, raw vs curated"))
    first = {}
    for r in recs:
        first.setdefault(str(r["policy"]), r)
    rows = [[p, _num(first[p]["n_eval"]), _num(first[p]["rows_dropped"]), _num(first[p]["rows_relabelled"]),
             _num(first[p]["rows_reweighted"]),
             *[_ci(at[(p, mt)]["value"], at[(p, mt)]["ci_lo"], at[(p, mt)]["ci_hi"], 3) if (p, mt) in at else "–"
               for mt in metrics]] for p in policies]
    section["blocks"].append(_table(["policy", "eval rows", "dropped", "relabelled", "reweighted", *metrics], rows))
    if "probe_classes" in tables and {"hurt", "q_value"} <= tables["probe_classes"]:  # uim probe: who was hurt
        hurt = _records(con, "report_probe_classes")
        if hurt:
            section["blocks"].append(_table(
                ["policy", "class", "eval rows", "train rows raw → curated", "raw accuracy", "accuracy [CI]",
                 "change", "q-value", "10 rarest"],
                [[h["policy"], h["label"], _num(h["n_eval"]), f"{_num(h['n_train_raw'])} → {_num(h['n_train'])}",
                  _num(h["raw_accuracy"], 3), _ci(h["accuracy"], h["ci_lo"], h["ci_hi"], 3), _num(h["delta"], 3),
                  f"{h['q_value']:.2g}", _num(h["is_tail10"])] for h in hurt],
                caption="classes whose accuracy fell significantly against raw (one-sided McNemar, "
                        "Benjamini-Hochberg q < 0.05)", cls="compact"))
        else:
            section["blocks"].append(_note("no class's accuracy fell significantly against raw under any policy "
                                           "(one-sided McNemar, Benjamini-Hochberg q < 0.05)."))
    return section
