//! `csv-watchdog query "SQL"`: ad-hoc SQL on a read-only connection. The data is the `records`
//! view, under the CSV's own column names; the ledger, catalog and history tables are there too.

use anyhow::{Result, bail};
use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::config::Settings;
use crate::error::exit;
use crate::output::{self, Format};

#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// The SQL to run, e.g. 'SELECT region, count(*) FROM records GROUP BY 1'
    pub sql: String,
    /// Output format [default: table on a terminal, csv otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn execute(settings: &Settings, args: &QueryArgs) -> Result<i32> {
    let conn = crate::cmd::open_store(settings)?;
    conn.pragma_update(None, "query_only", true)?;
    let mut stmt = match conn.prepare(&args.sql) {
        Ok(stmt) => stmt,
        Err(e) => bail!("{}", explain(&e)),
    };
    if !stmt.readonly() {
        bail!(
            "query is read-only: this statement would change the store, and nothing was changed \
             (the store changes only through `csv-watchdog run`)"
        );
    }
    let headers: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
    let mut rows = stmt.query([])?;
    let mut table = Vec::new();
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => bail!("{}", explain(&e)),
        };
        let mut values = Vec::with_capacity(headers.len());
        for index in 0..headers.len() {
            values.push(json_value(row.get_ref(index)?));
        }
        table.push(values);
    }
    if headers.is_empty() {
        // A statement without a result (e.g. a PRAGMA that only reads a setting into nothing).
        return Ok(exit::OK);
    }
    output::print(Format::or_default(args.format), &headers, &table)?;
    Ok(exit::OK)
}

/// An SQL error in plain words, pointing at the place in the statement where SQLite knows it.
fn explain(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqlInputError { msg, sql, offset, .. } if *offset >= 0 => {
            let offset = (*offset as usize).min(sql.len());
            let line_start = sql[..offset].rfind('\n').map_or(0, |i| i + 1);
            let line_end = sql[offset..].find('\n').map_or(sql.len(), |i| offset + i);
            let caret = " ".repeat(sql[line_start..offset].chars().count());
            format!("SQL error: {msg}\n  {}\n  {caret}^", &sql[line_start..line_end])
        }
        rusqlite::Error::SqliteFailure(_, Some(msg))
            if msg.contains("readonly") || msg.contains("read-only") =>
        {
            "query is read-only: this statement would change the store, and nothing was changed"
                .to_string()
        }
        other => format!("SQL error: {other}"),
    }
}

/// An SQLite value as JSON: numbers stay numbers, text stays text, NULL is null.
pub fn json_value(value: ValueRef) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}
