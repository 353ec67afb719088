-- report_label_noise: the largest cells of the label-noise matrix (confident joint, off-diagonal).
WITH cells AS (
    SELECT given_label, suggested_label, count, fraction_of_given
    FROM label_noise_matrix
)
SELECT given_label, suggested_label, count, fraction_of_given
FROM cells
ORDER BY count DESC, given_label, suggested_label
LIMIT $max_cells;
