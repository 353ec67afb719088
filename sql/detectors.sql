-- detectors: which detectors ran, what they flag, and their one-row summary (JSON).
CREATE OR REPLACE TABLE detectors AS
SELECT issue, description, summary::JSON AS summary
FROM read_json_auto($detectors_path, format = 'newline_delimited');
