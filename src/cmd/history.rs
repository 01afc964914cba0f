//! `csv-watchdog history KEY`: the versions of one row, newest first, with the file that made
//! each and the columns it changed; `--blame` shows which file last set each current value.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::error::exit;
use crate::output::{self, Format};
use crate::store::history;

#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// The key of the row
    pub key: String,
    /// For each current value, the file (and line) that last set it
    #[arg(long)]
    pub blame: bool,
    /// Output format [default: table on a terminal, csv otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn execute(settings: &Settings, args: &HistoryArgs) -> Result<i32> {
    let conn = crate::cmd::open_store(settings)?;
    let versions = history::versions(&conn, &args.key)?;
    if versions.is_empty() {
        let stored: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM record_data WHERE key = ?1)",
            [&args.key],
            |r| r.get(0),
        )?;
        if stored {
            bail!(
                "the row {:?} is stored but has no history: keep_history was off when it was written",
                args.key
            );
        }
        bail!(
            "no row with key {:?} has ever been stored (keys compare exactly, case included)",
            args.key
        );
    }
    warn_about_gaps(&conn, &args.key, &versions)?;
    let names = history::column_names(&conn)?;
    let name = |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("column {id}"));
    let format = Format::or_default(args.format);

    if args.blame {
        let headers = strings(&["column", "value", "file", "file_id", "line", "applied_at"]);
        let rows: Vec<Vec<Value>> = history::blame(&versions)
            .into_iter()
            .map(|(id, (v, value))| {
                vec![
                    json!(name(id)),
                    json!(value),
                    json!(v.file_name),
                    json!(v.file_id),
                    json!(v.line),
                    json!(v.applied_at),
                ]
            })
            .collect();
        output::print(format, &headers, &rows)?;
        return Ok(exit::OK);
    }

    let changes = history::changes(&versions);
    if format == Format::Json || format == Format::Jsonl {
        let list: Vec<Value> = changes
            .iter()
            .enumerate()
            .rev()
            .map(|(n, (v, changed))| {
                json!({
                    "version": n + 1,
                    "kind": v.kind,
                    "file": v.file_name,
                    "file_id": v.file_id,
                    "line": v.line,
                    "applied_at": v.applied_at,
                    "changes": changed.iter().map(|c| json!({"column": name(c.column_id), "old": c.old, "new": c.new})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let resent: Vec<Value> = versions
            .iter()
            .filter(|v| v.values.is_none())
            .map(|v| json!({"file": v.file_name, "file_id": v.file_id, "applied_at": v.applied_at}))
            .collect();
        let doc = json!({"key": args.key, "versions": list, "resent_unchanged": resent});
        crate::cmd::say_json(&doc, format)?;
        return Ok(exit::OK);
    }

    let headers =
        strings(&["version", "file", "file_id", "line", "applied_at", "column", "old", "new"]);
    let mut rows = Vec::new();
    for (n, (v, changed)) in changes.iter().enumerate().rev() {
        for c in changed {
            rows.push(vec![
                json!(n + 1),
                json!(v.file_name),
                json!(v.file_id),
                json!(v.line),
                json!(v.applied_at),
                json!(name(c.column_id)),
                json!(c.old),
                json!(c.new),
            ]);
        }
    }
    output::print(format, &headers, &rows)?;
    let resent = versions.iter().filter(|v| v.values.is_none()).count();
    if resent > 0 && format == Format::Table {
        crate::cmd::say(&format!(
            "(re-sent unchanged by {resent} later file(s); not counted as versions)"
        ));
    }
    Ok(exit::OK)
}

/// Says so when files were applied without history: versions may be missing, and a change they
/// made is shown in the next version that was kept.
fn warn_about_gaps(
    conn: &rusqlite::Connection,
    key: &str,
    versions: &[history::Version],
) -> Result<()> {
    let Some(stops) = crate::store::get_meta(conn, "history_stops_at")? else { return Ok(()) };
    let last_writer: Option<i64> =
        conn.query_row("SELECT file_id FROM record_data WHERE key = ?1", [key], |r| r.get(0)).ok();
    let latest = versions.last().map(|v| v.file_id);
    let note = if last_writer.is_some() && last_writer != latest {
        format!(
            "the row was last written by ledger entry {} without history; the values shown may be older than the stored row",
            last_writer.unwrap_or_default()
        )
    } else {
        "a change made while history was off is shown in the next version that was kept".to_string()
    };
    eprintln!(
        "csv-watchdog: warning: keep_history was off for files from ledger entry {stops} on, so this history may have gaps: {note}"
    );
    Ok(())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
