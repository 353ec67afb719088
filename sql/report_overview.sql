-- report_overview: corpus size and text-length statistics for `uim report`.
WITH lengths AS (
    SELECT n_chars
    FROM samples
)
SELECT
    count(*) AS n_rows,
    count(*) FILTER (WHERE n_chars = 0) AS n_empty,
    min(n_chars) AS min_chars,
    quantile_cont(n_chars, 0.5) AS median_chars,
    avg(n_chars) AS mean_chars,
    quantile_cont(n_chars, 0.95) AS p95_chars,
    max(n_chars) AS max_chars
FROM lengths;
