//! `csv-watchdog files`: the ledger, newest first; `files show NAME-or-ID`: one file's full
//! record and the keys it inserted and updated.

use anyhow::{Result, bail};
use chrono::DateTime;
use serde_json::{Value, json};

use crate::cmd::export::parse_time;
use crate::cmd::query::json_value;
use crate::config::Settings;
use crate::error::exit;
use crate::output::{self, Format};
use crate::store::ledger;

#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FilesArgs {
    #[command(subcommand)]
    pub command: Option<FilesCommand>,
    /// Only files with this outcome
    #[arg(long, value_parser = ["applied", "rejected", "duplicate"])]
    pub status: Option<String>,
    /// Only files seen at or after this time (RFC 3339, "2026-03-01 12:00" or "2026-03-01")
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Output format [default: table on a terminal, csv otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum FilesCommand {
    /// One file's full ledger record and the keys it inserted and updated
    Show {
        /// A ledger id, or a file name (its latest delivery)
        file: String,
        /// Output format [default: table on a terminal, csv otherwise]
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
}

pub fn execute(settings: &Settings, args: &FilesArgs) -> Result<i32> {
    let conn = crate::cmd::open_store(settings)?;
    if let Some(FilesCommand::Show { file, format }) = &args.command {
        return show(&conn, file, Format::or_default(*format));
    }
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let mut stmt = conn.prepare(include_str!("../../sql/files.sql"))?;
    let headers: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
    let status_at = headers.iter().position(|h| h == "status").expect("status column");
    let started_at = headers.iter().position(|h| h == "started_at").expect("started_at column");
    let mut rows = stmt.query([])?;
    let mut table = Vec::new();
    while let Some(row) = rows.next()? {
        let values: Vec<Value> =
            (0..headers.len()).map(|i| row.get_ref(i).map(json_value)).collect::<Result<_, _>>()?;
        if args.status.as_deref().is_some_and(|s| values[status_at] != json!(s)) {
            continue;
        }
        if let (Some(since), Some(at)) = (since, values[started_at].as_str())
            && DateTime::parse_from_rfc3339(at).is_ok_and(|at| at < since)
        {
            continue;
        }
        table.push(values);
    }
    let format = Format::or_default(args.format);
    if format == Format::Table {
        let (short, rows) = compact(&headers, &table);
        output::print(format, &short, &rows)?;
    } else {
        output::print(format, &headers, &table)?;
    }
    Ok(exit::OK)
}

/// The columns of the ledger that fit a terminal, under short names (csv and json keep all).
fn compact(headers: &[String], table: &[Vec<Value>]) -> (Vec<String>, Vec<Vec<Value>>) {
    const SHOWN: &[(&str, &str)] = &[
        ("id", "id"),
        ("name", "file"),
        ("status", "status"),
        ("rows_read", "read"),
        ("rows_inserted", "inserted"),
        ("rows_updated", "updated"),
        ("rows_unchanged", "unchanged"),
        ("started_at", "seen_at"),
        ("error", "reason"),
    ];
    let index: Vec<usize> = SHOWN
        .iter()
        .map(|(h, _)| headers.iter().position(|x| x == h).expect("ledger column"))
        .collect();
    let short = SHOWN.iter().map(|(_, s)| s.to_string()).collect();
    let rows = table.iter().map(|row| index.iter().map(|&i| row[i].clone()).collect()).collect();
    (short, rows)
}

fn show(conn: &rusqlite::Connection, spec: &str, format: Format) -> Result<i32> {
    let Some(entry) = ledger::find(conn, spec, false)? else {
        bail!("no file {spec:?} in the ledger; `csv-watchdog files` lists them");
    };
    let mut stmt = conn.prepare("SELECT * FROM ledger WHERE id = ?1")?;
    let fields: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
    let record: Vec<Value> = stmt.query_row([entry.id], |row| {
        (0..fields.len()).map(|i| row.get_ref(i).map(json_value)).collect()
    })?;
    let inserted = keys(conn, entry.id, "insert")?;
    let updated = keys(conn, entry.id, "update")?;

    if format == Format::Json || format == Format::Jsonl {
        let mut doc = output::object(&fields, &record);
        doc["keys_inserted"] = json!(inserted);
        doc["keys_updated"] = json!(updated);
        crate::cmd::say_json(&doc, format)?;
        return Ok(exit::OK);
    }
    let mut rows: Vec<Vec<Value>> =
        fields.iter().zip(&record).map(|(f, v)| vec![json!(f), v.clone()]).collect();
    rows.push(vec![json!("keys_inserted"), json!(inserted.join(" "))]);
    rows.push(vec![json!("keys_updated"), json!(updated.join(" "))]);
    output::print(format, &["field".to_string(), "value".to_string()], &rows)?;
    Ok(exit::OK)
}

/// The keys a file wrote with this kind of change, in file order.
fn keys(conn: &rusqlite::Connection, file_id: i64, kind: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT key FROM record_version WHERE file_id = ?1 AND kind = ?2 GROUP BY key ORDER BY min(seq)",
    )?;
    let rows = stmt.query_map(rusqlite::params![file_id, kind], |r| r.get(0))?;
    rows.collect()
}
