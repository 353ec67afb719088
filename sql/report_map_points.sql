-- report_map_points: the rows drawn on the embedding map, each with the issue it is coloured by
-- (its lowest-scored one; NULL when clean) and its flag columns (cluster_id where long_tail ran).
WITH picked AS (
    SELECT DISTINCT unnest($ids) AS id
),
worst_issue AS (
    SELECT issue_scores.id, arg_min(issue_scores.issue, issue_scores.score) AS issue
    FROM issue_scores
    JOIN picked USING (id)
    WHERE issue_scores.is_issue
    GROUP BY issue_scores.id
)
SELECT picked.id, worst_issue.issue, flags.* EXCLUDE (id)
FROM picked
JOIN flags USING (id)
LEFT JOIN worst_issue USING (id);
