"""The report's "Issues by source" section: the language mix, a group x issue heat map of lift and the
table of the worst groups (the ``issue_by_group`` view; group columns: :mod:`uimdata.groups`)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm

from uimdata.groups import has_groups, language_mix, worst_groups
from uimdata.report.blocks import ci, note, num, short, table
from uimdata.report.charts import chart, figure
from uimdata.store import load_sql


def report_section(con, max_groups: int = 25) -> dict | None:  # noqa: ANN001
    """The report's "Issues by source" section: the language mix, a group x issue heat map of lift
    (log scale, white = the corpus-wide rate) and the table of the worst groups."""
    if not has_groups(con):
        return None
    section: dict = {"id": "by-source", "title": "Issues by source", "blocks": []}
    blocks = section["blocks"]
    mix = language_mix(con)
    if mix:
        shown = ", ".join(f"{lang} {100 * share:.1f} %" for lang, _, share, _ in mix[:10])
        more = f" and {len(mix) - 10} more" if len(mix) > 10 else ""
        blocks.append({"kind": "p", "text": f"Language mix (samples.lang, py3langid): {shown}{more}."})
    recs = con.execute(load_sql("report_issue_by_group"), {"max_groups": max_groups}).fetchall()
    if not recs:
        blocks.append(note("no group columns in this run (uim scan --group-col)."))
        return section
    issues = sorted({r[2] for r in recs})
    keys = list(dict.fromkeys((r[0], r[1]) for r in recs))
    lift = np.full((len(keys), len(issues)), np.nan)
    where = {k: i for i, k in enumerate(keys)}
    for gc, g, issue, _, _, _, _, _, lf in recs:
        if lf is not None:
            lift[where[(gc, g)], issues.index(issue)] = max(lf, 1e-2)
    fig, ax = figure(1.2 + 0.9 * len(issues), 0.8 + 0.28 * len(keys))
    shown = np.where(np.isnan(lift), 1.0, lift)
    img = ax.imshow(shown, cmap="RdBu_r", norm=LogNorm(vmin=0.1, vmax=10), aspect="auto")
    ax.set_xticks(range(len(issues)), [short(i) for i in issues], rotation=30, ha="right")
    ax.set_yticks(range(len(keys)), [short(f"{gc}={'(null)' if g is None else g}") for gc, g in keys])
    for (yi, xi), v in np.ndenumerate(lift):
        if np.isfinite(v) and v != 1.0:
            ax.text(xi, yi, f"{v:.2g}", ha="center", va="center", fontsize=7)
    fig.colorbar(img, ax=ax, label="lift over the corpus-wide rate")
    ax.set_title("flagged rate per group / corpus-wide rate")
    blocks.append(chart(fig, "heat map of each issue's lift per group",
                        f"At most {max_groups} largest groups per group column; blank = no flagged row "
                        "in the corpus for that issue."))
    worst = worst_groups(con, per_issue=5)
    rows = [[i, gc, "(null)" if g is None else str(g)[:80], num(n), num(k), ci(r, lo, hi, 3),
             num(lf, 2)] for i, gc, g, n, k, r, lo, hi, lf in worst]
    blocks.append(table(["issue", "group column", "group", "rows", "flagged", "rate [95 % CI]", "lift"], rows,
                        "Groups whose flagged rate is significantly above the corpus-wide rate (the lower end "
                        "of its 95 % interval above it), worst first; all groups: SELECT * FROM issue_by_group."))
    return section
