-- report_slices: the top slices found by `uim link`, by rank (only the columns the report shows).
WITH ranked AS (
    SELECT slice_id, kind, rank, n_down, n_err, error_rate, lift, lift_lo, lift_hi, score, n_pre,
           dominant_issue, description
    FROM slices
)
SELECT *
FROM ranked
ORDER BY rank, slice_id
LIMIT $max_slices;
