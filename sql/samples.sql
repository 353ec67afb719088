-- samples: one row per corpus row (the ingest artifact; embeddings stay in parquet shards).
CREATE OR REPLACE TABLE samples AS
SELECT *
FROM read_parquet($samples_path)
ORDER BY "row";
