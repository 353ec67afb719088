-- top_examples: the worst flagged rows of each issue with their text (used by `uim summary`).
WITH ranked AS (
    SELECT
        issues.*,
        row_number() OVER (PARTITION BY issues.issue ORDER BY issues.score, issues.id) AS pos
    FROM issues
)
SELECT ranked.issue, ranked.id, ranked.score, ranked.reason, samples.text
FROM ranked
JOIN samples USING (id)
WHERE ranked.pos <= $per_issue
ORDER BY ranked.issue, ranked.pos;
