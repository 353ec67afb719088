-- issues: flagged rows only, worst first within each issue.
CREATE OR REPLACE VIEW issues AS
WITH flagged AS (
    SELECT id, issue, score, reason
    FROM issue_scores
    WHERE is_issue
)
SELECT flagged.id, flagged.issue, flagged.score, flagged.reason
FROM flagged
ORDER BY flagged.issue, flagged.score, flagged.id;
