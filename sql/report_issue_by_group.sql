-- report_issue_by_group: issue_by_group for the report's heat map, limited to the $max_groups largest
-- groups of each group column.
WITH sizes AS (
    SELECT
        group_col,
        "group",
        max(n_rows) AS n_rows,
        row_number() OVER (PARTITION BY group_col ORDER BY max(n_rows) DESC, "group") AS k
    FROM issue_by_group
    GROUP BY group_col, "group"
)
SELECT b.group_col, b."group", b.issue, b.n_rows, b.n_flagged, b.rate, b.rate_lo, b.rate_hi, b.lift
FROM issue_by_group AS b
INNER JOIN sizes AS s ON b.group_col = s.group_col AND b."group" IS NOT DISTINCT FROM s."group"
WHERE s.k <= $max_groups
ORDER BY b.group_col, s.k, b.issue;
