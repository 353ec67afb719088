-- report_clusters: the k-means clusters of the long_tail detector, largest first.
WITH clustered AS (
    SELECT cluster_id, size, density, top_label, top_label_share, is_rare
    FROM clusters
)
SELECT cluster_id, size, density, top_label, top_label_share, is_rare
FROM clustered
ORDER BY size DESC, cluster_id;
