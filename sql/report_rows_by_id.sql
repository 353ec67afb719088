-- report_rows_by_id: id and text of the given rows (the kept members of duplicates in `uim report`).
WITH wanted AS (
    SELECT DISTINCT unnest($ids) AS id
)
SELECT samples.id, samples.text
FROM samples
JOIN wanted USING (id);
