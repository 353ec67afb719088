-- neighbors: the kNN graph, k rows per sample (rank 1 = nearest other sample).
CREATE OR REPLACE TABLE neighbors AS
SELECT id, rank, neighbor_id, cosine, "row", neighbor_row
FROM read_parquet($neighbors_path)
ORDER BY "row", rank;
