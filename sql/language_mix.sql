-- language_mix: rows per detected language (samples.lang; NULL = no letters), largest first.
SELECT
    coalesce(lang, '(none)') AS lang,
    count(*) AS n_rows,
    count(*) / sum(count(*)) OVER () AS share,
    avg(lang_conf) AS mean_conf
FROM samples
GROUP BY lang
ORDER BY n_rows DESC, lang;
