-- report_detectors: every detector of the run with its summary (JSON text; {"skipped": why} if it could not run).
WITH ran AS (
    SELECT issue, description, summary::VARCHAR AS summary
    FROM detectors
)
SELECT issue, description, summary
FROM ran;
