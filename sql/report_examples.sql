-- report_examples: the $per_issue worst flagged rows of each issue with their sample and every flag
-- column (duplicate_of, near_duplicate_of, suggested_label, corrupted_rule, ... where they exist).
WITH ranked AS (
    SELECT
        issues.id,
        issues.issue,
        issues.score,
        issues.reason,
        row_number() OVER (PARTITION BY issues.issue ORDER BY issues.score, issues.id) AS pos
    FROM issues
),
worst AS (
    SELECT *
    FROM ranked
    WHERE pos <= $per_issue
)
SELECT worst.issue, worst.pos, worst.id, worst.score, worst.reason, samples.* EXCLUDE (id), flags.* EXCLUDE (id)
FROM worst
JOIN samples USING (id)
JOIN flags USING (id)
ORDER BY worst.issue, worst.pos;
