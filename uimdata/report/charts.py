"""charts: matplotlib for the report: the settings and colours every chart shares, a figure factory,
log axes with plain tick labels, error bars, and a finished figure turned into a chart block that
inlines it as a ``data:`` URI (SVG by default, PNG for dense scatter plots).

matplotlib is imported inside the functions: importing the report costs nothing until it draws.
"""

from __future__ import annotations

import base64
import io

import numpy as np

#: matplotlib settings for every chart: text kept as text in SVG (smaller files), deterministic SVG ids.
RC = {"svg.fonttype": "none", "svg.hashsalt": "uimdata", "font.size": 9,
      "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8,
      "legend.frameon": False, "figure.dpi": 100}
ISSUE_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#1f77b4", "#2ca02c", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#7f7f7f")
POLICY_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#bcbd22", "#8c564b")
GREY, ACCENT, TAIL, HEAD = "#b8b8b8", "#1f77b4", "#ff7f0e", "#1f77b4"


def issue_colour(k: int) -> str:
    """The colour of the ``k``-th issue (or series) of a chart."""
    return ISSUE_COLOURS[k % len(ISSUE_COLOURS)]


def figure(width: float, height: float, ncols: int = 1):
    """A constrained-layout figure (not registered with pyplot) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, ncols)


def log_axis(ax, which: str = "x") -> None:
    """Log scale with plain tick labels (1, 2, 3, 5, 10, ...), not 10^k."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4g}"))
    axis.set_minor_formatter(NullFormatter())


def err_bars(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Asymmetric error bars for matplotlib (missing bounds draw no bar)."""
    below = np.where(np.isfinite(lo), values - lo, 0.0)
    above = np.where(np.isfinite(hi), hi - values, 0.0)
    return np.clip(np.vstack([below, above]), 0, None)


def patch(colour: str, label: str):
    """A legend entry for a colour that no artist carries a label for."""
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


def data_uri(fig, fmt: str = "svg") -> str:
    """The figure as a ``data:`` URI, without a date or software stamp (the same run draws the same bytes)."""
    buf = io.BytesIO()
    if fmt == "svg":
        fig.savefig(buf, format="svg", metadata={"Date": None})
        return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def chart(fig, alt: str, caption: str = "", fmt: str = "svg") -> dict:
    """The chart block of a finished figure."""
    return {"kind": "chart", "uri": data_uri(fig, fmt), "alt": alt, "caption": caption}
