-- report_probe: probe metrics per curation policy (raw vs curated) with confidence intervals.
WITH results AS (
    SELECT policy, metric, value, ci_lo, ci_hi, n_eval, rows_dropped, rows_relabelled, rows_reweighted
    FROM probe_results
)
SELECT *
FROM results
ORDER BY metric, policy;
