-- flags: one row per sample, the wide is_<issue>_issue / <issue>_score / <issue>_reason columns
-- of every detector plus their extra columns (duplicate_of, duplicate_cluster, ...).
CREATE OR REPLACE TABLE flags AS
SELECT *
FROM read_parquet($flags_path);
