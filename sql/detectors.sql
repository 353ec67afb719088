-- detectors: which detectors ran, what they flag, and their one-row summary (JSON). The columns are
-- spelt out so that a scan with no detector at all still gets the (empty) table.
CREATE OR REPLACE TABLE detectors AS
SELECT issue, description, summary::JSON AS summary
FROM read_json($detectors_path, format = 'newline_delimited',
               columns = {issue: 'VARCHAR', description: 'VARCHAR', summary: 'JSON'});
