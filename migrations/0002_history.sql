-- csv-watchdog store, schema version 2: row history and provenance.

-- Every write of a row by a file, keyed by the row's key and the arrival position (seq) the
-- write gave it, so any past state of the master CSV can be rebuilt exactly. vals holds the
-- file's value fields for the row (one CSV record, an empty field for an empty cell; the key is
-- not repeated); file_columns says which catalog column each field is. A row's values after a
-- write are exactly those fields, since every column a file lacks becomes empty. An 'unchanged'
-- re-send is not a new version: vals is NULL, only its new position is kept.
CREATE TABLE record_version (
    key     TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    file_id INTEGER NOT NULL REFERENCES ledger(id),
    line    INTEGER NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('insert', 'update', 'unchanged')),
    vals    TEXT,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;

-- For each applied file, the catalog ids of the fields in its record_version.vals, in order.
CREATE TABLE file_columns (
    file_id    INTEGER PRIMARY KEY REFERENCES ledger(id),
    column_ids TEXT NOT NULL
);

-- Which file produced each stored row, from which line.
CREATE VIEW record_source AS
SELECT d.key AS key, l.id AS file_id, l.name AS file, d.line AS line, l.checksum AS checksum,
       l.finished_at AS applied_at
FROM record_data d JOIN ledger l ON l.id = d.file_id;

-- Stores made before history existed get one 'insert' version per stored row, attributed to
-- the file that last wrote it; the migration's code step fills in the values.
INSERT INTO record_version (key, seq, file_id, line, kind, vals)
SELECT key, seq, file_id, line, 'insert', NULL FROM record_data;
