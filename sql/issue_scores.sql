-- issue_scores: the long form of flags, one row per (sample, issue). This file is the per-issue
-- SELECT; store.py joins one copy per detector with UNION ALL into the view.
SELECT
    id,
    '{issue}' AS issue,
    is_{issue}_issue AS is_issue,
    {issue}_score AS score,
    {issue}_reason AS reason
FROM flags
