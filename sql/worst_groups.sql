-- worst_groups: per issue, the groups significantly above the corpus-wide rate (the lower end of the
-- rate's 95 % Wilson interval above it), groups of at least $min_rows rows, ranked by that lower end
-- over the corpus rate; $per_issue groups per issue (uim summary, the report).
WITH ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY issue ORDER BY rate_lo / corpus_rate DESC, n_flagged DESC, group_col, "group"
        ) AS k
    FROM issue_by_group
    WHERE corpus_rate > 0 AND rate_lo > corpus_rate AND n_rows >= $min_rows
)
SELECT issue, group_col, "group", n_rows, n_flagged, rate, rate_lo, rate_hi, lift
FROM ranked
WHERE k <= $per_issue
ORDER BY issue, k;
