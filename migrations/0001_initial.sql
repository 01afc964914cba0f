-- csv-watchdog store, schema version 1.
-- Migrations are append-only: never edit this file after a release, add 0002_*.sql instead.

-- Small facts about the store: the key column it was built with, and the data and export
-- generations that tell whether the master CSV is behind the store.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per invocation of `run`.
CREATE TABLE run (
    id              INTEGER PRIMARY KEY,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    dry_run         INTEGER NOT NULL DEFAULT 0,
    files_applied   INTEGER NOT NULL DEFAULT 0,
    files_rejected  INTEGER NOT NULL DEFAULT 0,
    files_duplicate INTEGER NOT NULL DEFAULT 0,
    rows_inserted   INTEGER NOT NULL DEFAULT 0,
    rows_updated    INTEGER NOT NULL DEFAULT 0,
    exit_status     INTEGER
);

-- One row per input file seen: applied, rejected or a repeated delivery (duplicate).
-- moved_to is where the file goes (archive or rejected folder); moved_at stays NULL until the
-- file is really there, so a run killed in between can finish the move.
CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES run(id),
    name            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    mtime           TEXT NOT NULL,
    checksum        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('applied', 'rejected', 'duplicate')),
    rows_read       INTEGER NOT NULL DEFAULT 0,
    rows_inserted   INTEGER NOT NULL DEFAULT 0,
    rows_updated    INTEGER NOT NULL DEFAULT 0,
    rows_unchanged  INTEGER NOT NULL DEFAULT 0,
    duplicate_keys  INTEGER NOT NULL DEFAULT 0,
    columns_added   INTEGER NOT NULL DEFAULT 0,
    columns_dropped INTEGER NOT NULL DEFAULT 0,
    rule            TEXT,
    line            INTEGER,
    column_name     TEXT,
    error           TEXT,
    moved_to        TEXT NOT NULL,
    moved_at        TEXT,
    started_at      TEXT NOT NULL,
    finished_at     TEXT NOT NULL
);
CREATE INDEX ledger_by_name_checksum ON ledger (name, checksum);
CREATE INDEX ledger_pending_move ON ledger (id) WHERE moved_at IS NULL;

-- The column catalog: every column the store has known. A live column has dropped_by NULL.
-- The data of column id N lives in record_data.cN (the key column in record_data.key), so a
-- header name never reaches SQL as an identifier and cannot collide with bookkeeping.
CREATE TABLE catalog (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    folded     TEXT NOT NULL,
    position   INTEGER NOT NULL,
    is_key     INTEGER NOT NULL DEFAULT 0,
    added_by   INTEGER REFERENCES ledger(id),
    added_at   TEXT NOT NULL,
    dropped_by INTEGER REFERENCES ledger(id),
    dropped_at TEXT
);
CREATE UNIQUE INDEX catalog_live_name ON catalog (folded) WHERE dropped_by IS NULL;

-- The records. seq is the arrival order (a row moves to the end when a file writes it);
-- file_id is the ledger row of the file that last wrote the row, line its line in that file.
-- Value columns cN are added and dropped as the catalog changes; an empty cell is NULL.
CREATE TABLE record_data (
    seq     INTEGER PRIMARY KEY,
    key     TEXT NOT NULL UNIQUE,
    file_id INTEGER NOT NULL REFERENCES ledger(id),
    line    INTEGER NOT NULL
);
