-- language_mix: rows per detected language (samples.lang), largest first. '(none)' = no letters;
-- '(uncertain)' = identified with probability under 0.9 (short identifier-heavy texts and code, where
-- py3langid's guesses, e.g. 'pcm' or 'la' for package descriptions, are not languages).
SELECT
    CASE WHEN lang IS NULL THEN '(none)' WHEN lang_conf < 0.9 THEN '(uncertain)' ELSE lang END AS lang,
    count(*) AS n_rows,
    count(*) / sum(count(*)) OVER () AS share,
    avg(lang_conf) AS mean_conf
FROM samples
GROUP BY 1
ORDER BY n_rows DESC, lang;
