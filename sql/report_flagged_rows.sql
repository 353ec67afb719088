-- report_flagged_rows: corpus positions of every flagged row (the embedding map oversamples them).
WITH flagged AS (
    SELECT DISTINCT id
    FROM issue_scores
    WHERE is_issue
)
SELECT samples."row"
FROM flagged
JOIN samples USING (id)
ORDER BY samples."row";
