"""Issue attribution: which corpus issues make a downstream error more likely.

One logistic regression (statsmodels) of a downstream row's error on the share of its ``k`` pre-training
neighbours flagged by each issue; per issue the odds ratio per +10 points of share with a 95 % interval
and its p-value. For a loss, "error" means a loss in the worst quarter.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from uimdata.stats import Z95

SCHEMA = {"issue": pl.Utf8, "mean_share": pl.Float64, "rows_with_flagged_neighbours": pl.Int64,
          "error_rate_with": pl.Float64, "error_rate_without": pl.Float64, "odds_ratio": pl.Float64,
          "or_lo": pl.Float64, "or_hi": pl.Float64, "p_value": pl.Float64, "significant": pl.Boolean}


def issue_attribution(error: np.ndarray, shares: dict[str, np.ndarray], binary: bool,
                      min_rows: int = 20, alpha: float = 0.05) -> pl.DataFrame:
    """Logistic regression (statsmodels) of the error on each issue's share of flagged neighbours;
    odds ratios per +10 points of share. Issues with fewer than ``min_rows`` downstream rows next to a
    flagged row are listed without a fit; an issue is ``significant`` when its p-value is below ``alpha``
    and it raises the odds."""
    ok = ~np.isnan(error)
    y = error[ok]
    if not binary:  # a loss: "high loss" = the worst quarter
        y = (y >= np.quantile(y, 0.75)).astype(float)
    # an issue enters the model when enough rows have flagged neighbours to estimate its effect
    names = [k for k, v in shares.items() if (v[ok] > 0).sum() >= min_rows and np.nanstd(v[ok]) > 0]
    fit = _fit(y, np.column_stack([shares[k][ok] for k in names])) if names and 0 < y.mean() < 1 else None
    rows = []
    for k, v in shares.items():
        share = v[ok]
        flagged_any = share > 0
        err_with = float(y[flagged_any].mean()) if flagged_any.any() else None
        err_without = float(y[~flagged_any].mean()) if (~flagged_any).any() else None
        row = {"issue": k, "mean_share": float(share.mean()), "rows_with_flagged_neighbours": int(flagged_any.sum()),
               "error_rate_with": err_with, "error_rate_without": err_without,
               "odds_ratio": None, "or_lo": None, "or_hi": None, "p_value": None, "significant": False}
        if fit is not None and k in names:
            j = names.index(k) + 1
            b, se = float(fit.params[j]), float(fit.bse[j])
            ors = np.exp(np.clip(0.1 * np.array([b, b - Z95 * se, b + Z95 * se]), -700, 700))
            row.update(odds_ratio=float(ors[0]), or_lo=float(ors[1]), or_hi=float(ors[2]),
                       p_value=float(fit.pvalues[j]))
            row["significant"] = bool(row["p_value"] < alpha and b > 0)
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA).sort("p_value", nulls_last=True)


def _fit(y: np.ndarray, x: np.ndarray):  # noqa: ANN202 - a statsmodels result, or None
    """The logit fit of ``y`` on ``x`` (plus a constant): Newton, else BFGS; None when neither gives
    finite standard errors (separation, a singular design)."""
    import statsmodels.api as sm

    x = sm.add_constant(x, has_constant="add")
    fit = None
    for method in ("newton", "bfgs"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = sm.Logit(y, x).fit(disp=0, maxiter=200, method=method)
            if np.all(np.isfinite(fit.bse)):
                break
        except Exception:  # noqa: BLE001 - separation / singular design: try the next solver
            fit = None
    if fit is not None and not np.all(np.isfinite(fit.bse)):
        fit = None
    return fit
