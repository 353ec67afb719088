"""classes: the report's sections about labels: "Classes and long tail" (rows per class with the head
and tail that ``long_tail`` found, and its k-means clusters with the rare-region threshold) and
"Label noise" (the ``label`` detector's confident joint as a heat map).

What counts as head, tail or a rare cluster is read from the run (the ``long_tail`` summary and the
``clusters`` table), never recomputed here: the report shows the thresholds the scan used.
"""

from __future__ import annotations

import duckdb
import numpy as np

from uimdata.detectors.label import LabelDetector as Label
from uimdata.detectors.long_tail import LongTailDetector as LongTail
from uimdata.report.blocks import note, num, paragraph, pct, short, table
from uimdata.report.charts import ACCENT, GREY, HEAD, TAIL, chart, figure, log_axis, patch
from uimdata.report.db import Tables, records

CLASS_BARS = 80        # up to this many classes: one bar each; more: a rank-frequency plot
MAX_CLASSES = 5000     # classes read for the class chart
CLUSTER_ROWS = 15      # smallest clusters listed
NOISE_LABELS = 15      # given x suggested labels in the label-noise heat map
NOISE_CELLS = 2000     # label-noise cells read


# --- classes and long tail ----------------------------------------------------------------------
def classes(con: duckdb.DuckDBPyConnection, tables: Tables, detectors: dict[str, dict]) -> dict:
    """Section "Classes and long tail"."""
    blocks: list[dict] = []
    tail_info = detectors.get(LongTail.issue, {}).get("summary", {})
    ran = LongTail.issue in detectors and not tail_info.get("skipped")
    if "label" not in tables["samples"]:
        blocks.append(note("the corpus has no label column."))
    else:
        blocks += _class_blocks(records(con, "report_classes", {"max_classes": MAX_CLASSES}), tail_info, ran)
    if "clusters" in tables:
        blocks += _cluster_blocks(records(con, "report_clusters"), tail_info)
    elif not ran:
        blocks.append(note("long_tail did not run: no clusters."))
    return {"id": "classes", "title": "Classes and long tail", "blocks": blocks}


def _class_blocks(recs: list[dict], tail_info: dict, ran: bool) -> list[dict]:
    """Rows per class (largest first, head and tail coloured) and the table of tail classes."""
    if not recs:
        return [note("every label is missing.")]
    tail = set(tail_info.get("tail_classes") or [])
    head = set(tail_info.get("head_classes") or [])
    n = np.array([r["n"] for r in recs], dtype=float)
    colours = [TAIL if r["label"] in tail else HEAD if r["label"] in head else GREY for r in recs]
    blocks = [_class_chart(recs, n, colours, legend=bool(tail or head))]
    total = n.sum()
    tail_rows = [[r["label"], num(r["n"]), pct(r["n"] / total)] for r in recs if r["label"] in tail]
    if tail_rows:
        blocks.append(table(["tail class", "rows", "share of labelled rows"], tail_rows,
                            caption=tail_info.get("tail_rule", ""), cls="compact"))
    elif ran:
        blocks.append(note("no class is rare enough to count as tail."))
    return blocks


def _class_chart(recs: list[dict], n: np.ndarray, colours: list[str], legend: bool) -> dict:
    """One bar per class up to ``CLASS_BARS`` classes, a log-log rank-frequency plot above."""
    if len(recs) <= CLASS_BARS:
        fig, ax = figure(min(1.2 + 0.16 * len(recs), 12) + 1.5, 3.6)
        x = np.arange(len(recs))
        ax.bar(x, n, color=colours, width=0.8)
        ax.set_xticks(x, [short(r["label"], 28) for r in recs], rotation=90, fontsize=7)
        ax.set_xlim(-0.7, len(recs) - 0.3)
    else:
        fig, ax = figure(8.5, 3.4)
        ax.scatter(np.arange(1, len(recs) + 1), n, c=colours, s=6)
        log_axis(ax)
        log_axis(ax, "y")
        ax.set_xlabel(f"class rank (largest {len(recs):,} classes)")
    ax.set_ylabel("rows")
    ax.set_title("rows per class, largest first")
    handles = [patch(c, t) for c, t in ((HEAD, "head: largest classes holding 80 % of rows"),
                                        (GREY, "middle"), (TAIL, "tail: rare classes")) if c in colours]
    if legend:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return chart(fig, "bar chart of rows per class")


def _cluster_blocks(recs: list[dict], tail_info: dict) -> list[dict]:
    """Cluster sizes with the rare-region threshold, and the smallest clusters."""
    if not recs:
        return [note("no clusters.")]
    smallest = sorted(recs, key=lambda r: (not r["is_rare"], r["size"], r["cluster_id"]))[:CLUSTER_ROWS]
    rows = [[r["cluster_id"], num(r["size"]), num(r["density"]), r["top_label"] or "–",
             pct(r["top_label_share"]) if r["top_label_share"] is not None else "–",
             "yes" if r["is_rare"] else ""] for r in smallest]
    n_rare = sum(bool(r["is_rare"]) for r in recs)
    return [_cluster_chart(recs, tail_info),
            table(["cluster", "rows", "density", "top label", "top label share", "rare"], rows,
                  caption=f"{n_rare} rare cluster(s) of {len(recs)}; the {len(smallest)} smallest listed.",
                  cls="compact")]


def _cluster_chart(recs: list[dict], tail_info: dict) -> dict:
    """Bars of cluster sizes, rare ones (the ``clusters`` table's ``is_rare``) in the tail colour, and a
    line at the threshold the scan used: ``cluster_ratio`` x the median cluster size of the
    ``long_tail`` summary (a run scanned before the summary held ``cluster_ratio`` gets no line)."""
    sizes = np.array([r["size"] for r in recs], dtype=float)
    fig, ax = figure(8.5, 2.6)
    ax.bar(np.arange(len(recs)), sizes, color=[TAIL if r["is_rare"] else ACCENT for r in recs], width=0.85)
    ratio = tail_info.get("cluster_ratio")
    if ratio is not None:
        median = tail_info.get("median_cluster_size") or float(np.median(sizes))
        ax.axhline(ratio * median, color="#444", lw=0.8, ls="--",
                   label=f"rare below {ratio:g} × the median cluster size")
        ax.legend(loc="upper right")
    ax.set_xticks([])
    ax.set_xlabel(f"{len(recs):,} k-means clusters of the embedding space, largest first")
    ax.set_ylabel("rows")
    ax.set_title("cluster sizes (rare regions in orange)")
    return chart(fig, "bar chart of cluster sizes")


# --- label noise --------------------------------------------------------------------------------
def label_noise(con: duckdb.DuckDBPyConnection, tables: Tables, detectors: dict[str, dict]) -> dict:
    """Section "Label noise": the estimated noise rate, the heat map and the largest cells."""
    blocks: list[dict] = []
    section = {"id": "label-noise", "title": "Label noise", "blocks": blocks}
    label_info = detectors.get(Label.issue, {}).get("summary", {})
    if "label_noise_matrix" not in tables:
        blocks.append(note("the label detector did not run"
                           + (f" ({label_info['skipped']})." if label_info.get("skipped") else ".")))
        return section
    if label_info.get("estimated_noise_rate") is not None:
        blocks.append(paragraph(f"Estimated label-noise rate {pct(label_info['estimated_noise_rate'])} "
                                f"(confident joint over {label_info.get('label_model', '?')} out-of-fold "
                                "probabilities)."))
    cells = records(con, "report_label_noise", {"max_cells": NOISE_CELLS})
    if not cells:
        blocks.append(note("the confident joint has no off-diagonal cell: no label looks swapped."))
        return section
    blocks.append(_noise_heat_map(cells))
    blocks.append(table(["given label", "suggested label", "rows", "share of given"],
                        [[c["given_label"], c["suggested_label"], num(c["count"]), pct(c["fraction_of_given"])]
                         for c in cells[:10]], caption="largest cells", cls="compact"))
    return section


def _top(cells: list[dict], key: str, among: set[str] | None = None) -> list[str]:
    """The ``NOISE_LABELS`` values of ``key`` with the most rows (ties by name), counting only cells whose
    given label is in ``among`` when it is given."""
    total: dict[str, int] = {}
    for c in cells:
        if among is None or c["given_label"] in among:
            total[c[key]] = total.get(c[key], 0) + c["count"]
    return sorted(total, key=lambda v: (-total[v], v))[:NOISE_LABELS]


def _noise_heat_map(cells: list[dict]) -> dict:
    """Given x suggested label counts for the labels with the most suspected errors."""
    given = _top(cells, "given_label")
    sugg = _top(cells, "suggested_label", set(given))
    m = np.zeros((len(given), len(sugg)))
    gi, si = {g: i for i, g in enumerate(given)}, {s: i for i, s in enumerate(sugg)}
    for c in cells:
        if c["given_label"] in gi and c["suggested_label"] in si:
            m[gi[c["given_label"]], si[c["suggested_label"]]] = c["count"]
    fig, ax = figure(max(5.0, 0.45 * len(sugg) + 3.2), max(3.2, 0.36 * len(given) + 2.2))
    im = ax.imshow(m, cmap="Blues", aspect="auto")
    ax.set_xticks(np.arange(len(sugg)), [short(s, 28) for s in sugg], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(given)), [short(g, 28) for g in given], fontsize=8)
    ax.set_xlabel("suggested label")
    ax.set_ylabel("given label")
    vmax = m.max() or 1
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7, color="white" if v > vmax / 2 else "#222")
    fig.colorbar(im, ax=ax, shrink=0.8, label="rows")
    ax.set_title("label-noise matrix: given vs suggested label (off-diagonal counts)")
    ax.spines[:].set_visible(False)
    return chart(fig, "heat map of the label-noise matrix",
                 f"The {len(given)} given labels with the most suspected errors and the {len(sugg)} labels"
                 " they are most often suggested as.")
