-- A whole-run table written by a detector (label_noise_matrix, clusters, ...): one parquet file
-- per table under RUN/tables/, loaded as is. store.py fills in {name}.
CREATE OR REPLACE TABLE {name} AS
SELECT *
FROM read_parquet($path);
