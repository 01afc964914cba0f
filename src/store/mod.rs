//! The SQLite store: opening it with the right settings, its schema, and small shared helpers.
//! Catalog, ledger and record queries live in the submodules.

pub mod catalog;
pub mod history;
pub mod ledger;
pub mod migrate;
pub mod records;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// SQLite's default limit of columns per table.
pub const SQLITE_MAX_COLUMN: usize = 2000;
/// Columns of `record_data` that are not value columns: seq, file_id, line (the key counts as
/// a user column).
pub const BOOKKEEPING_COLUMNS: usize = 3;
/// The most live columns, key included, that the store can hold.
pub const MAX_LIVE_COLUMNS: usize = SQLITE_MAX_COLUMN - BOOKKEEPING_COLUMNS;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store was written by a newer csv-watchdog (schema version {found}; this build knows up to {known}); upgrade csv-watchdog"
    )]
    TooNew { found: usize, known: usize },
    #[error("migration {name} failed: {}", plain(.error))]
    Migration { name: &'static str, error: rusqlite::Error },
    #[error(
        "the store was built with key column {stored:?} but the config says key_column {configured:?}; use another store_file or fix the config"
    )]
    KeyMismatch { stored: String, configured: String },
    #[error("cannot open the store {}: {}{}", .path.display(), plain(.error), open_hint(.error))]
    Open { path: PathBuf, error: rusqlite::Error },
    #[error("store error: {}", plain(.0))]
    Sql(rusqlite::Error),
    #[error(
        "the store file holds another application's database (tables, but no csv-watchdog schema); point store_file at a new file"
    )]
    Foreign,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sql(e)
    }
}

/// SQLite's own message, without rusqlite's repetition of the error code.
pub fn plain(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqliteFailure(code, None) => code.to_string(),
        other => other.to_string(),
    }
}

fn open_hint(error: &rusqlite::Error) -> &'static str {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            " (the file is not a sound SQLite database: damaged, cut short, or another file?); \
             `csv-watchdog rebuild --force` builds a new store from the archive"
        }
        Some(rusqlite::ErrorCode::ReadOnly) | Some(rusqlite::ErrorCode::CannotOpen) => {
            " (check that the file and its folder are writable)"
        }
        _ => "",
    }
}

/// Opens (creating if needed) the store at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let open_err = |error| StoreError::Open { path: path.to_path_buf(), error };
    let mut conn = Connection::open(path).map_err(open_err)?;
    configure(&conn).map_err(open_err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
    migrate::migrate(&mut conn).map_err(|e| match e {
        StoreError::Sql(error) => open_err(error),
        other => other,
    })?;
    Ok(conn)
}

/// Opens the store read-only, for commands that only look; `None` when there is no store yet.
/// A store made by an older csv-watchdog is migrated once first (which needs write access).
pub fn open_read_only(path: &Path) -> Result<Option<Connection>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = read_only(path)?;
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(|error| StoreError::Open { path: path.to_path_buf(), error })?
        as usize;
    if version > migrate::LATEST {
        return Err(StoreError::TooNew { found: version, known: migrate::LATEST });
    }
    if version == 0 {
        // An empty file, or one a run is creating right now: nothing to read yet.
        return Ok(None);
    }
    if version < migrate::LATEST {
        drop(conn);
        drop(open(path)?);
        return Ok(Some(read_only(path)?));
    }
    Ok(Some(conn))
}

fn read_only(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |error| StoreError::Open { path: path.to_path_buf(), error };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A fresh store in memory, for a dry run when no store file exists yet.
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrate::migrate(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    // FULL: a commit survives power loss, not only a killed process; it costs one sync per file.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

pub fn get_meta(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get(0)).optional()
}

pub fn set_meta(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [name, value],
    )?;
    Ok(())
}

/// Checks that the store was built for `key_column`, recording it on first use.
pub fn check_key_column(conn: &Connection, key_column: &str) -> Result<(), StoreError> {
    match get_meta(conn, "key_column")? {
        Some(stored) if !stored.eq_ignore_ascii_case(key_column) => {
            Err(StoreError::KeyMismatch { stored, configured: key_column.to_string() })
        }
        Some(_) => Ok(()),
        None => Ok(set_meta(conn, "key_column", key_column)?),
    }
}

/// The data generation counts committed changes; the export generation is the data generation
/// the master CSV was last written from.
pub fn generations(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let read = |name| -> rusqlite::Result<i64> {
        Ok(get_meta(conn, name)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    };
    Ok((read("data_generation")?, read("export_generation")?))
}

/// Records that the exports on disk were written from data generation `generation`, with this
/// master CSV checksum; both in one transaction, so no reader sees one without the other.
pub fn mark_exported(
    conn: &mut Connection,
    generation: i64,
    checksum: &str,
) -> rusqlite::Result<()> {
    let sp = conn.savepoint()?;
    set_meta(&sp, "export_generation", &generation.to_string())?;
    set_meta(&sp, "export_checksum", checksum)?;
    sp.commit()
}

/// The time now, local with offset, as stored in the ledger.
pub fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}
