//! Schema migrations: numbered SQL files from `migrations/`, embedded in the binary and tracked
//! in SQLite's `user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Every migration, in order; `user_version` is the number of them applied. A migration may
/// have a code step, run in the same transaction after its SQL.
const MIGRATIONS: &[(&str, &str, Option<CodeStep>)] = &[
    ("0001_initial", include_str!("../../migrations/0001_initial.sql"), None),
    ("0002_history", include_str!("../../migrations/0002_history.sql"), Some(backfill_history)),
];

type CodeStep = fn(&Connection) -> rusqlite::Result<()>;

/// The schema version this build writes.
pub const LATEST: usize = MIGRATIONS.len();

/// Brings the store's schema up to [`LATEST`], each migration in its own transaction, taken
/// for writing at once and checked again inside, so two processes opening a new store at the
/// same moment do not both migrate it.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: usize =
            tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        if current > LATEST {
            return Err(StoreError::TooNew { found: current, known: LATEST });
        }
        if current == LATEST {
            return Ok(());
        }
        if current == 0 {
            refuse_foreign_database(&tx)?;
        }
        let (name, sql, code) = MIGRATIONS[current];
        tx.execute_batch(sql).map_err(|e| StoreError::Migration { name, error: e })?;
        if let Some(code) = code {
            code(&tx).map_err(|e| StoreError::Migration { name, error: e })?;
        }
        tx.pragma_update(None, "user_version", (current + 1) as i64)?;
        tx.commit()?;
        tracing::info!(migration = name, "store schema migrated");
    }
}

/// A database with tables but no csv-watchdog schema version belongs to something else.
fn refuse_foreign_database(conn: &Connection) -> Result<(), StoreError> {
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables > 0 {
        return Err(StoreError::Foreign);
    }
    Ok(())
}

/// Fills the values of the versions made for rows stored before history existed: every live
/// value column, registered as the field list of each file that wrote a stored row.
fn backfill_history(conn: &Connection) -> rusqlite::Result<()> {
    // The `records` view exists from the start, so queries work before any file arrives.
    super::catalog::refresh_view(conn, &super::catalog::live_columns(conn)?)?;
    // Past states before this point cannot be rebuilt: only the rows as they are now are known.
    let last: Option<i64> = conn.query_row("SELECT max(id) FROM ledger", [], |r| r.get(0))?;
    if let Some(last) = last {
        super::set_meta(conn, "history_starts_after", &last.to_string())?;
    }
    let columns: Vec<super::catalog::Column> =
        super::catalog::live_columns(conn)?.into_iter().filter(|c| !c.is_key).collect();
    let ids: Vec<String> = columns.iter().map(|c| c.id.to_string()).collect();
    conn.execute(
        "INSERT INTO file_columns (file_id, column_ids) SELECT DISTINCT file_id, ?1 FROM record_data",
        [ids.join(",")],
    )?;
    let mut select = "SELECT key".to_string();
    for column in &columns {
        select.push_str(", ");
        select.push_str(&column.physical());
    }
    select.push_str(" FROM record_data");
    let mut stmt = conn.prepare(&select)?;
    let mut update =
        conn.prepare("UPDATE record_version SET vals = ?2 WHERE key = ?1 AND vals IS NULL")?;
    let mut rows = stmt.query([])?;
    let mut encoded = String::new();
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let values: Vec<Option<String>> =
            (1..=columns.len()).map(|i| row.get(i)).collect::<Result<_, _>>()?;
        super::records::encode_fields(&mut encoded, values.iter().map(|v| v.as_deref()));
        update.execute(rusqlite::params![key, encoded])?;
    }
    Ok(())
}
