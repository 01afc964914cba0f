//! Schema migrations: numbered SQL files from `migrations/`, embedded in the binary and tracked
//! in SQLite's `user_version`.

use rusqlite::Connection;

use super::StoreError;

/// Every migration, in order; `user_version` is the number of them applied.
const MIGRATIONS: &[(&str, &str)] =
    &[("0001_initial", include_str!("../../migrations/0001_initial.sql"))];

/// The schema version this build writes.
pub const LATEST: usize = MIGRATIONS.len();

/// Brings the store's schema up to [`LATEST`], each migration in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > LATEST {
        return Err(StoreError::TooNew { found: current, known: LATEST });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|e| StoreError::Migration { name, error: e })?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
        tracing::info!(migration = name, "store schema migrated");
    }
    Ok(())
}
