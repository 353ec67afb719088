"""link_probe: the report's optional sections, from the tables ``uim link`` and ``uim probe`` add to a
run: "Error slices" (``slices``), "Issue attribution" (``issue_attribution``) and "Probe: raw vs
curated" (``probe_results``, and ``probe_classes`` for the classes a policy hurt).

A section is left out when its table does not exist, and reduced to a note when the table lacks a
column named in its ``*_COLUMNS`` (the only columns it reads) or has no rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np

from uimdata.probe import HURT_FDR, METRICS, TAIL_N
from uimdata.report.blocks import as_float, ci, note, num, paragraph, pct, short, table, text_cell
from uimdata.report.charts import GREY, POLICY_COLOURS, chart, err_bars, figure, issue_colour, log_axis
from uimdata.report.db import Tables, missing, records

MAX_SLICES = 15
SLICE_COLUMNS = ("slice_id", "kind", "rank", "n_down", "n_err", "error_rate", "lift", "lift_lo", "lift_hi",
                 "score", "n_pre", "dominant_issue", "description")
ATTRIBUTION_COLUMNS = ("issue", "odds_ratio", "or_lo", "or_hi", "p_value", "significant")
PROBE_COLUMNS = ("policy", "metric", "value", "ci_lo", "ci_hi", "n_eval", "rows_dropped", "rows_relabelled",
                 "rows_reweighted")
HURT_RULE = f"one-sided McNemar, Benjamini-Hochberg q < {HURT_FDR:g}"  # probe_classes.hurt


def _optional(con: duckdb.DuckDBPyConnection, tables: Tables, table_name: str, sid: str, title: str,
              columns: Sequence[str], query: str, empty: str, params: dict | None = None
              ) -> tuple[dict | None, list[dict]]:
    """An optional section (its table exists only after link / probe): the section and its records, or
    the section with a note (missing columns, no rows) and no records."""
    if table_name not in tables:
        return None, []
    section = {"id": sid, "title": title, "blocks": []}
    lacking = missing(tables, table_name, columns)
    if lacking:
        section["blocks"].append(lacking)
        return section, []
    recs = records(con, query, params) if params else records(con, query)
    if not recs:
        section["blocks"].append(note(empty))
    return section, recs


# --- error slices -------------------------------------------------------------------------------
def slices(con: duckdb.DuckDBPyConnection, tables: Tables) -> dict | None:
    """Section "Error slices": the top ``MAX_SLICES`` slices with their error lift and its interval."""
    section, recs = _optional(con, tables, "slices", "slices", "Error slices (uim link)", SLICE_COLUMNS,
                              "report_slices", "no slices.", {"max_slices": MAX_SLICES})
    if not recs:
        return section
    section["blocks"].append(paragraph("The top slices of the downstream evaluation by rank "
                                       "(tier, then the lower bound of the lift; see `uim link`). Lift = the "
                                       "slice's error rate over the overall error rate, with its confidence "
                                       "interval."))
    section["blocks"].append(_lift_chart(recs))
    rows = [[r["rank"], text_cell(r["description"], r["slice_id"], 300), r["kind"],
             num(r["n_down"]), num(r["n_err"]), pct(r["error_rate"]), ci(r["lift"], r["lift_lo"], r["lift_hi"]),
             num(r["score"]), num(r["n_pre"]), r["dominant_issue"] or "–"] for r in recs]
    section["blocks"].append(table(["rank", "slice", "kind", "downstream rows", "errors", "error rate",
                                    "lift [CI]", "score", "pre-training rows", "dominant issue"], rows))
    return section


def _lift_chart(recs: list[dict]) -> dict:
    """Each slice's lift with its interval, one colour per slice kind, log scale when every value is positive."""
    lift = np.array([as_float(r["lift"]) for r in recs])
    lo, hi = np.array([as_float(r["lift_lo"]) for r in recs]), np.array([as_float(r["lift_hi"]) for r in recs])
    fig, ax = figure(8.5, 0.36 * len(recs) + 1.1)
    y = np.arange(len(recs))[::-1]
    kinds = sorted({str(r["kind"]) for r in recs})
    for k, kind in enumerate(kinds):
        m = np.array([str(r["kind"]) == kind for r in recs])
        ax.errorbar(lift[m], y[m], xerr=err_bars(lift[m], lo[m], hi[m]), fmt="o", ms=5, capsize=3,
                    color=issue_colour(k), label=short(kind))
    ax.axvline(1.0, color="#444", lw=0.8, ls="--")
    ax.set_yticks(y, [short(f"#{r['rank']} {r['description'] or r['slice_id']}", 55) for r in recs], fontsize=8)
    if np.all(np.nan_to_num(np.concatenate([lift, lo, hi]), nan=1.0) > 0):
        log_axis(ax)
    ax.set_xlabel("error lift (1 = the overall error rate)")
    ax.set_title(f"top {len(recs)} slices: error lift with confidence interval")
    ax.legend(loc="lower right", title="kind")
    return chart(fig, "error lift per slice with confidence intervals")


# --- issue attribution --------------------------------------------------------------------------
def attribution(con: duckdb.DuckDBPyConnection, tables: Tables) -> dict | None:
    """Section "Issue attribution": odds ratio of a downstream error per issue, with its interval."""
    section, recs = _optional(con, tables, "issue_attribution", "attribution", "Issue attribution (uim link)",
                              ATTRIBUTION_COLUMNS, "report_attribution", "no issues attributed.")
    if not recs:
        return section
    section["blocks"].append(paragraph("Odds ratio of a downstream error when the linked pre-training rows "
                                       "carry an issue, with its confidence interval (log scale; 1 = no "
                                       "effect)."))
    section["blocks"].append(_odds_chart(recs))
    rows = [[r["issue"], ci(r["odds_ratio"], r["or_lo"], r["or_hi"]),
             "–" if r["p_value"] is None else f"{r['p_value']:.2g}", num(r["significant"])] for r in recs]
    section["blocks"].append(table(["issue", "odds ratio [CI]", "p-value", "significant"], rows, cls="compact"))
    return section


def _odds_chart(recs: list[dict]) -> dict:
    """Odds ratios on a log scale, infinite or missing values clipped to the drawn range."""
    odds = np.array([as_float(r["odds_ratio"]) for r in recs])
    lo, hi = np.array([as_float(r["or_lo"]) for r in recs]), np.array([as_float(r["or_hi"]) for r in recs])
    finite = np.concatenate([odds, lo, hi])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    floor, ceil = (finite.min() / 2, finite.max() * 2) if len(finite) else (0.1, 10.0)
    odds, lo, hi = (np.clip(np.nan_to_num(a, nan=np.nan, posinf=ceil, neginf=floor), floor, ceil)
                    for a in (odds, lo, hi))
    sig = np.array([bool(r["significant"]) for r in recs])
    fig, ax = figure(8.5, 0.4 * len(recs) + 1.1)
    y = np.arange(len(recs))[::-1]
    for m, colour, label in ((sig, "#d62728", "significant"), (~sig, "#7f7f7f", "not significant")):
        if m.any():
            ax.errorbar(odds[m], y[m], xerr=err_bars(odds[m], lo[m], hi[m]), fmt="s", ms=5, capsize=3,
                        color=colour, label=label)
    ax.axvline(1.0, color="#444", lw=0.8, ls="--")
    log_axis(ax)
    ax.set_yticks(y, [short(r["issue"]) for r in recs])
    ax.set_xlabel("odds ratio of a downstream error (log scale)")
    ax.set_title("issue attribution: odds ratio with confidence interval")
    ax.legend(loc="lower right")
    return chart(fig, "odds ratio per issue with confidence intervals")


# --- probe --------------------------------------------------------------------------------------
def probe(con: duckdb.DuckDBPyConnection, tables: Tables) -> dict | None:
    """Section "Probe: raw vs curated": each metric per policy (raw first), as grouped bars and a table,
    then the classes a policy hurt."""
    section, recs = _optional(con, tables, "probe_results", "probe", "Probe: raw vs curated (uim probe)",
                              PROBE_COLUMNS, "report_probe", "no probe results.")
    if not recs:
        return section
    policies = sorted({str(r["policy"]) for r in recs}, key=lambda p: (p != "raw", p))
    metrics = sorted({str(r["metric"]) for r in recs},
                     key=lambda m: (METRICS.index(m) if m in METRICS else len(METRICS), m))
    at = {(str(r["policy"]), str(r["metric"])): r for r in recs}
    section["blocks"].append(_probe_chart(at, policies, metrics))
    section["blocks"].append(_probe_table(recs, at, policies, metrics))
    if "probe_classes" in tables and {"hurt", "q_value"} <= tables["probe_classes"]:  # uim probe: who was hurt
        section["blocks"].append(_hurt_classes(records(con, "report_probe_classes")))
    return section


def _probe_chart(at: dict[tuple[str, str], dict], policies: list[str], metrics: list[str]) -> dict:
    """One group of bars per metric, one bar per policy (raw in grey), with confidence intervals."""
    fig, ax = figure(max(6.0, 1.3 * len(metrics) + 2.5), 3.4)
    width = 0.8 / len(policies)
    x = np.arange(len(metrics))
    values = []
    for k, p in enumerate(policies):
        rs = [at.get((p, mt)) for mt in metrics]
        v = np.array([as_float(r["value"]) if r else np.nan for r in rs])
        lo = np.array([as_float(r["ci_lo"]) if r else np.nan for r in rs])
        hi = np.array([as_float(r["ci_hi"]) if r else np.nan for r in rs])
        values.append(np.concatenate([v, lo, hi]))
        ax.bar(x + (k - (len(policies) - 1) / 2) * width, np.nan_to_num(v), width * 0.95,
               yerr=err_bars(np.nan_to_num(v), lo, hi), capsize=3, label=short(p),
               color=GREY if p == "raw" else POLICY_COLOURS[k % len(POLICY_COLOURS)])
    ax.set_xticks(x, [short(mt, 24) for mt in metrics])
    allv = np.concatenate(values)
    allv = allv[np.isfinite(allv)]
    if len(allv) and allv.min() >= 0 and allv.max() <= 1:
        ax.set_ylim(0, 1.05)
    ax.set_ylabel("value")
    ax.set_title("probe metrics per policy, with confidence intervals")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="policy")
    return chart(fig, "grouped bar chart of probe metrics, raw vs curated")


def _probe_table(recs: list[dict], at: dict[tuple[str, str], dict], policies: list[str], metrics: list[str]
                 ) -> dict:
    """A row per policy: its curation counts (from its first result row) and each metric with its interval."""
    first: dict[str, dict] = {}
    for r in recs:
        first.setdefault(str(r["policy"]), r)
    rows = [[p, num(first[p]["n_eval"]), num(first[p]["rows_dropped"]), num(first[p]["rows_relabelled"]),
             num(first[p]["rows_reweighted"]),
             *[ci(at[(p, mt)]["value"], at[(p, mt)]["ci_lo"], at[(p, mt)]["ci_hi"], 3) if (p, mt) in at else "–"
               for mt in metrics]] for p in policies]
    return table(["policy", "eval rows", "dropped", "relabelled", "reweighted", *metrics], rows)


def _hurt_classes(hurt: list[dict]) -> dict:
    """The classes whose accuracy fell significantly against raw, or a note that none did."""
    if not hurt:
        return note(f"no class's accuracy fell significantly against raw under any policy ({HURT_RULE}).")
    return table(
        ["policy", "class", "eval rows", "train rows raw → curated", "raw accuracy", "accuracy [CI]",
         "change", "q-value", f"{TAIL_N} rarest"],
        [[h["policy"], h["label"], num(h["n_eval"]), f"{num(h['n_train_raw'])} → {num(h['n_train'])}",
          num(h["raw_accuracy"], 3), ci(h["accuracy"], h["ci_lo"], h["ci_hi"], 3), num(h["delta"], 3),
          f"{h['q_value']:.2g}", num(h["is_tail10"])] for h in hurt],
        caption=f"classes whose accuracy fell significantly against raw ({HURT_RULE})", cls="compact")
