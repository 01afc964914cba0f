-- csv-watchdog store, schema version 2: row history and provenance.

-- Every write of a row by a file: the row's values after the write (a JSON object keyed by
-- catalog id, NULL for an 'unchanged' re-send, which is not a new version) and its arrival
-- position (seq), so any past state of the master CSV can be rebuilt exactly.
CREATE TABLE record_version (
    id      INTEGER PRIMARY KEY,
    key     TEXT NOT NULL,
    file_id INTEGER NOT NULL REFERENCES ledger(id),
    line    INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('insert', 'update', 'unchanged')),
    vals    TEXT
);
CREATE INDEX record_version_by_key ON record_version (key, id);
CREATE INDEX record_version_by_file ON record_version (file_id);

-- Which file produced each stored row, from which line.
CREATE VIEW record_source AS
SELECT d.key AS key, l.id AS file_id, l.name AS file, d.line AS line, l.checksum AS checksum,
       l.finished_at AS applied_at
FROM record_data d JOIN ledger l ON l.id = d.file_id;

-- Stores made before history existed get one 'insert' version per stored row (attributed to the
-- file that last wrote it); the values are filled in by the migration's code step.
INSERT INTO record_version (key, file_id, line, seq, kind, vals)
SELECT key, file_id, line, seq, 'insert', NULL FROM record_data ORDER BY seq;
