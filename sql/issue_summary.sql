-- issue_summary: one row per detector: rows flagged, the flagged fraction, the mean score.
CREATE OR REPLACE VIEW issue_summary AS
WITH per_issue AS (
    SELECT
        issue,
        count(*) FILTER (WHERE is_issue) AS n_flagged,
        count(*) AS n_rows,
        avg(score) AS mean_score
    FROM issue_scores
    GROUP BY issue
),
described AS (
    SELECT per_issue.*, detectors.description
    FROM per_issue
    LEFT JOIN detectors USING (issue)
)
SELECT
    issue,
    n_flagged,
    n_flagged / n_rows AS fraction,
    mean_score,
    description
FROM described
ORDER BY n_flagged DESC, issue;
