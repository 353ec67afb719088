-- report_attribution: odds ratio of downstream errors per issue with its confidence interval.
WITH attribution AS (
    SELECT issue, odds_ratio, or_lo, or_hi, p_value, significant
    FROM issue_attribution
)
SELECT *
FROM attribution
ORDER BY odds_ratio DESC NULLS LAST, issue;
