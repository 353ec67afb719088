-- report_classes: rows per class, largest first (only run when samples has a label column).
WITH labelled AS (
    SELECT label
    FROM samples
    WHERE label IS NOT NULL
)
SELECT label, count(*) AS n
FROM labelled
GROUP BY label
ORDER BY n DESC, label
LIMIT $max_classes;
