//! The ledger of files and the table of runs.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::InputError;
use crate::inbox::Candidate;

/// The outcome of a file, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Applied,
    Rejected,
    Duplicate,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Rejected => "rejected",
            Status::Duplicate => "duplicate",
        }
    }
}

/// Row counts of an applied file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub rows_read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub duplicate_keys: u64,
    pub columns_added: u64,
    pub columns_dropped: u64,
}

/// Records a file in the ledger; the move to `moved_to` is still to be done.
pub fn insert(
    conn: &Connection,
    run_id: i64,
    file: &Candidate,
    status: Status,
    moved_to: &str,
    started_at: &str,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO ledger (run_id, name, size, mtime, checksum, status, moved_to, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        run_id,
        file.name,
        file.size as i64,
        file.mtime_text(),
        file.checksum.to_string(),
        status.as_str(),
        moved_to,
        started_at
    ])?;
    Ok(conn.last_insert_rowid())
}

pub fn set_counts(
    conn: &Connection,
    id: i64,
    counts: &Counts,
    finished_at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE ledger SET rows_read = ?2, rows_inserted = ?3, rows_updated = ?4, rows_unchanged = ?5,
         duplicate_keys = ?6, columns_added = ?7, columns_dropped = ?8, finished_at = ?9 WHERE id = ?1",
    )?
    .execute(params![
        id,
        counts.rows_read as i64,
        counts.inserted as i64,
        counts.updated as i64,
        counts.unchanged as i64,
        counts.duplicate_keys as i64,
        counts.columns_added as i64,
        counts.columns_dropped as i64,
        finished_at
    ])?;
    Ok(())
}

pub fn set_error(
    conn: &Connection,
    id: i64,
    error: &InputError,
    text: &str,
) -> rusqlite::Result<()> {
    let reason = Reason {
        rule: error.rule.as_str().to_string(),
        line: error.line.map(|l| l as i64),
        column: error.column.as_ref().map(|c| c.name.clone()),
        text: text.to_string(),
    };
    set_reason(conn, id, &reason)
}

/// Why a file was rejected, as the ledger and the rejection JSON hold it.
#[derive(Debug, Clone)]
pub struct Reason {
    pub rule: String,
    pub line: Option<i64>,
    pub column: Option<String>,
    pub text: String,
}

pub fn set_reason(conn: &Connection, id: i64, reason: &Reason) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE ledger SET rule = ?2, line = ?3, column_name = ?4, error = ?5 WHERE id = ?1",
    )?
    .execute(params![id, reason.rule, reason.line, reason.column, reason.text])?;
    Ok(())
}

pub fn mark_moved(conn: &Connection, id: i64, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE ledger SET moved_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// The applied ledger entry with this name and checksum, if any: a repeated delivery.
pub fn find_applied(
    conn: &Connection,
    name: &str,
    checksum: &str,
) -> rusqlite::Result<Option<(i64, String)>> {
    conn.prepare_cached(
        "SELECT id, finished_at FROM ledger WHERE name = ?1 AND checksum = ?2 AND status = 'applied'
         ORDER BY id LIMIT 1",
    )?
    .query_row([name, checksum], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// A file whose ledger row is committed but whose move was not confirmed.
#[derive(Debug, Clone)]
pub struct PendingMove {
    pub id: i64,
    pub name: String,
    pub checksum: String,
    pub status: String,
    pub moved_to: String,
    pub rule: Option<String>,
    pub line: Option<i64>,
    pub column_name: Option<String>,
    pub error: Option<String>,
}

pub fn pending_moves(conn: &Connection) -> rusqlite::Result<Vec<PendingMove>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, checksum, status, moved_to, rule, line, column_name, error
         FROM ledger WHERE moved_at IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PendingMove {
            id: r.get(0)?,
            name: r.get(1)?,
            checksum: r.get(2)?,
            status: r.get(3)?,
            moved_to: r.get(4)?,
            rule: r.get(5)?,
            line: r.get(6)?,
            column_name: r.get(7)?,
            error: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// How many files were applied up to ledger entry `upto` (`i64::MAX`: all).
pub fn files_applied(conn: &Connection, upto: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM ledger WHERE status = 'applied' AND id <= ?1",
        [upto],
        |r| r.get(0),
    )
}

/// The finish time of the last applied file up to ledger entry `upto`: when the data last changed.
pub fn last_applied_at(conn: &Connection, upto: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT finished_at FROM ledger WHERE status = 'applied' AND id <= ?1 ORDER BY id DESC LIMIT 1",
        [upto],
        |r| r.get(0),
    )
    .optional()
}

pub fn start_run(conn: &Connection, dry_run: bool, now: &str) -> rusqlite::Result<i64> {
    conn.execute("INSERT INTO run (started_at, dry_run) VALUES (?1, ?2)", params![now, dry_run])?;
    Ok(conn.last_insert_rowid())
}

/// Totals of a run, for its row and its summary line.
#[derive(Debug, Clone, Default)]
pub struct RunTotals {
    pub applied: u64,
    pub rejected: u64,
    pub duplicate: u64,
    pub unreadable: u64,
    pub inserted: u64,
    pub updated: u64,
}

pub fn finish_run(
    conn: &Connection,
    id: i64,
    totals: &RunTotals,
    exit_status: i32,
    now: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE run SET finished_at = ?2, files_applied = ?3, files_rejected = ?4, files_duplicate = ?5,
         rows_inserted = ?6, rows_updated = ?7, exit_status = ?8 WHERE id = ?1",
        params![
            id,
            now,
            totals.applied as i64,
            totals.rejected as i64,
            totals.duplicate as i64,
            totals.inserted as i64,
            totals.updated as i64,
            exit_status
        ],
    )?;
    Ok(())
}

/// A ledger entry named on the command line by id or by file name.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub finished_at: String,
}

/// Finds a ledger entry by id (a number) or by file name: the latest entry with that name, or
/// with `applied_first`, the latest applied one if there is one.
pub fn find(conn: &Connection, spec: &str, applied_first: bool) -> rusqlite::Result<Option<Entry>> {
    let row = entry_from_row;
    if let Ok(id) = spec.parse::<i64>()
        && let Some(entry) = conn
            .query_row("SELECT id, name, status, finished_at FROM ledger WHERE id = ?1", [id], row)
            .optional()?
    {
        return Ok(Some(entry));
    }
    conn.query_row(
        "SELECT id, name, status, finished_at FROM ledger WHERE name = ?1
         ORDER BY (?2 AND status = 'applied') DESC, id DESC LIMIT 1",
        rusqlite::params![spec, applied_first],
        row,
    )
    .optional()
}

/// Applied entries, oldest first, with the time each finished.
pub fn applied(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, status, finished_at FROM ledger WHERE status = 'applied' ORDER BY id",
    )?;
    let rows = stmt.query_map([], entry_from_row)?;
    rows.collect()
}

/// An entry from a row of `id, name, status, finished_at`.
fn entry_from_row(r: &rusqlite::Row) -> rusqlite::Result<Entry> {
    Ok(Entry { id: r.get(0)?, name: r.get(1)?, status: r.get(2)?, finished_at: r.get(3)? })
}
