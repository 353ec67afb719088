-- issue_scores when no detector ran (every requested one was skipped): the same columns, no rows.
SELECT
    NULL::VARCHAR AS id,
    NULL::VARCHAR AS issue,
    NULL::BOOLEAN AS is_issue,
    NULL::DOUBLE AS score,
    NULL::VARCHAR AS reason
WHERE false
