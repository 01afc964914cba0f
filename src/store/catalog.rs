//! The column catalog: which columns the store has, under which spelling, in which physical
//! column of `record_data`, added and dropped by which file.

use rusqlite::{Connection, params};

/// A live column of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub id: i64,
    pub name: String,
    pub folded: String,
    pub position: i64,
    pub is_key: bool,
}

impl Column {
    /// The physical column in `record_data` that holds this column's values.
    pub fn physical(&self) -> String {
        if self.is_key { "key".to_string() } else { format!("c{}", self.id) }
    }
}

/// Live columns in the order they were first seen (key first when there is one).
pub fn live_columns(conn: &Connection) -> rusqlite::Result<Vec<Column>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, folded, position, is_key FROM catalog WHERE dropped_by IS NULL
         ORDER BY is_key DESC, position",
    )?;
    let rows = stmt.query_map([], column_from_row)?;
    rows.collect()
}

/// A column from a row of `id, name, folded, position, is_key`.
fn column_from_row(r: &rusqlite::Row) -> rusqlite::Result<Column> {
    Ok(Column {
        id: r.get(0)?,
        name: r.get(1)?,
        folded: r.get(2)?,
        position: r.get(3)?,
        is_key: r.get(4)?,
    })
}

/// The columns live right after ledger entry `file_id` was applied, key first.
pub fn columns_after(conn: &Connection, file_id: i64) -> rusqlite::Result<Vec<Column>> {
    let mut stmt = conn.prepare_cached(include_str!("../../sql/as_of_columns.sql"))?;
    let rows = stmt.query_map([file_id], column_from_row)?;
    rows.collect()
}

/// Adds a column to the catalog and, unless it is the key, a physical column for its values.
pub fn add(
    conn: &Connection,
    name: &str,
    folded: &str,
    is_key: bool,
    file_id: i64,
    now: &str,
) -> rusqlite::Result<Column> {
    let position: i64 =
        conn.query_row("SELECT coalesce(max(position), 0) + 1 FROM catalog", [], |r| r.get(0))?;
    conn.execute(
        "INSERT INTO catalog (name, folded, position, is_key, added_by, added_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![name, folded, position, is_key, file_id, now],
    )?;
    let column = Column {
        id: conn.last_insert_rowid(),
        name: name.into(),
        folded: folded.into(),
        position,
        is_key,
    };
    if !is_key {
        conn.execute_batch(&format!(
            "ALTER TABLE record_data ADD COLUMN {} TEXT",
            column.physical()
        ))?;
    }
    Ok(column)
}

/// Whether any stored row still holds a value in `column`.
pub fn holds_values(conn: &Connection, column: &Column) -> rusqlite::Result<bool> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM record_data WHERE {} IS NOT NULL)",
        column.physical()
    );
    conn.query_row(&sql, [], |r| r.get(0))
}

/// Marks columns dropped by `file_id` and removes their (empty) physical columns. One column
/// goes with `ALTER TABLE … DROP COLUMN`; several at once are removed by copying the table
/// once, since each DROP COLUMN rewrites the whole table.
pub fn drop_columns(
    conn: &Connection,
    columns: &[Column],
    file_id: i64,
    now: &str,
) -> rusqlite::Result<()> {
    let mut mark =
        conn.prepare_cached("UPDATE catalog SET dropped_by = ?1, dropped_at = ?2 WHERE id = ?3")?;
    for column in columns {
        mark.execute(params![file_id, now, column.id])?;
    }
    match columns {
        [] => Ok(()),
        // SQLite re-checks views on DROP COLUMN; the `records` view is re-created by the caller.
        [column] => conn.execute_batch(&format!(
            "DROP VIEW IF EXISTS records; ALTER TABLE record_data DROP COLUMN {}",
            column.physical()
        )),
        _ => copy_without(conn, columns),
    }
}

/// Re-creates `record_data` without the given columns, keeping rows, keys and views.
fn copy_without(conn: &Connection, columns: &[Column]) -> rusqlite::Result<()> {
    let gone: Vec<String> = columns.iter().map(Column::physical).collect();
    let mut stmt =
        conn.prepare("SELECT name FROM pragma_table_info('record_data') ORDER BY cid")?;
    let all: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let kept: Vec<String> = all.into_iter().filter(|c| !gone.contains(c)).collect();
    let values: Vec<String> = kept
        .iter()
        .filter(|c| !["seq", "key", "file_id", "line"].contains(&c.as_str()))
        .map(|c| format!(", {c} TEXT"))
        .collect();

    let mut stmt = conn.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'view'")?;
    let views: Vec<(String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    for (name, _) in &views {
        conn.execute_batch(&format!("DROP VIEW {}", quote_identifier(name)))?;
    }
    conn.execute_batch(&format!(
        "CREATE TABLE record_data_new (
             seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
             file_id INTEGER NOT NULL REFERENCES ledger(id), line INTEGER NOT NULL{values});
         INSERT INTO record_data_new ({list}) SELECT {list} FROM record_data;
         DROP TABLE record_data;
         ALTER TABLE record_data_new RENAME TO record_data;",
        values = values.concat(),
        list = kept.join(", ")
    ))?;
    for (name, sql) in &views {
        if name != "records" {
            conn.execute_batch(sql)?;
        }
    }
    Ok(())
}

/// Re-creates the `records` view: one column per live column, under the CSV's own name.
pub fn refresh_view(conn: &Connection, columns: &[Column]) -> rusqlite::Result<()> {
    let list: Vec<String> = columns
        .iter()
        .map(|c| format!("{} AS {}", c.physical(), quote_identifier(&c.name)))
        .collect();
    let select = if list.is_empty() { "key AS key".to_string() } else { list.join(", ") };
    conn.execute_batch(&include_str!("../../sql/records_view.sql").replace("{columns}", &select))
}

/// Quotes a name as an SQL identifier (double quotes, inner ones doubled).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
