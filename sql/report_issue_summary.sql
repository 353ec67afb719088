-- report_issue_summary: rows flagged per issue, most first (the issue summary section of `uim report`).
WITH summary AS (
    SELECT issue, n_flagged, fraction, mean_score, description
    FROM issue_summary
)
SELECT issue, n_flagged, fraction, mean_score, description
FROM summary
ORDER BY n_flagged DESC, issue;
