-- issue_by_group: every issue's flagged rate in each group of each group column (the long table
-- sample_groups: samples.source, samples.lang, the host of a url column, ... as chosen by
-- `uim scan --group-col`), with its 95 % Wilson interval and its lift over the corpus-wide rate.
CREATE OR REPLACE VIEW issue_by_group AS
WITH per_group AS (
    SELECT
        g.group_col,
        g."group",
        s.issue,
        count(*) AS n_rows,
        count(*) FILTER (WHERE s.is_issue) AS n_flagged
    FROM sample_groups AS g
    INNER JOIN issue_scores AS s USING (id)
    GROUP BY g.group_col, g."group", s.issue
),
corpus AS (
    SELECT
        issue,
        count(*) FILTER (WHERE is_issue) / count(*) AS corpus_rate
    FROM issue_scores
    GROUP BY issue
),
rated AS (
    SELECT
        p.*,
        p.n_flagged / p.n_rows AS rate,
        c.corpus_rate,
        1.959963984540054 AS z
    FROM per_group AS p
    INNER JOIN corpus AS c USING (issue)
)
SELECT
    group_col,
    "group",
    issue,
    n_rows,
    n_flagged,
    rate,
    greatest(0.0, (rate + z * z / (2 * n_rows)
        - z * sqrt(rate * (1 - rate) / n_rows + z * z / (4 * n_rows * n_rows))) / (1 + z * z / n_rows)) AS rate_lo,
    least(1.0, (rate + z * z / (2 * n_rows)
        + z * sqrt(rate * (1 - rate) / n_rows + z * z / (4 * n_rows * n_rows))) / (1 + z * z / n_rows)) AS rate_hi,
    CASE WHEN corpus_rate > 0 THEN rate / corpus_rate END AS lift,
    corpus_rate
FROM rated
ORDER BY group_col, issue, lift DESC NULLS LAST, "group";
