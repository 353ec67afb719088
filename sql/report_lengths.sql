-- report_lengths: histogram of text lengths, $per_decade log-spaced bins per decade of characters
-- (bin b holds lengths in [10^(b/$per_decade), 10^((b+1)/$per_decade)); empty texts fall in bin 0).
WITH binned AS (
    SELECT floor(log10(greatest(n_chars, 1)) * $per_decade)::INTEGER AS bin
    FROM samples
)
SELECT bin, count(*) AS n
FROM binned
GROUP BY bin
ORDER BY bin;
