-- report_label_stats: labelled rows and classes (only run when samples has a label column).
WITH labelled AS (
    SELECT label
    FROM samples
    WHERE label IS NOT NULL
)
SELECT count(*) AS n_labelled, count(DISTINCT label) AS n_classes
FROM labelled;
