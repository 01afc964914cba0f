//! `csv-watchdog status`: what the store holds, how the last run went, what waits in the inbox,
//! and whether the master CSV and metadata match the store.

use anyhow::Result;
use serde_json::{Value, json};

use crate::checksum::Checksum;
use crate::config::Settings;
use crate::error::exit;
use crate::inbox;
use crate::output::{self, Format};
use crate::store;

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Output format [default: table on a terminal, csv otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn execute(settings: &Settings, args: &StatusArgs) -> Result<i32> {
    let conn = crate::cmd::open_store(settings)?;
    let (rows, columns, applied, rejected, duplicate, unmoved): (i64, i64, i64, i64, i64, i64) =
        conn.query_row(include_str!("../../sql/status.sql"), [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
    let last_run: Option<(i64, String, Option<String>, Option<i64>)> = conn
        .query_row(
            "SELECT id, started_at, finished_at, exit_status FROM run ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .ok();
    let waiting: Vec<String> = inbox::list(&settings.watch_dir, &settings.supported_extensions)
        .unwrap_or_default()
        .iter()
        .map(|p| inbox::file_name(p))
        .collect();

    let mut facts: Vec<(&str, Value)> = vec![
        ("store", json!(settings.store_file.display().to_string())),
        ("rows", json!(rows)),
        ("live_columns", json!(columns)),
        ("files_applied", json!(applied)),
        ("files_rejected", json!(rejected)),
        ("files_duplicate", json!(duplicate)),
        ("files_recorded_not_yet_moved", json!(unmoved)),
        ("files_waiting_in_inbox", json!(waiting.len())),
    ];
    if !waiting.is_empty() {
        facts.push(("waiting", json!(waiting.join(" "))));
    }
    match &last_run {
        Some((id, started, finished, status)) => {
            facts.push(("last_run", json!(id)));
            facts.push(("last_run_started", json!(started)));
            facts.push(("last_run_finished", json!(finished)));
            facts.push(("last_run_outcome", json!(outcome(finished.is_some(), *status))));
        }
        None => facts.push(("last_run", Value::Null)),
    }
    let exports = exports_state(&conn, settings)?;
    facts.push(("master_csv", json!(exports.0)));
    facts.push(("metadata", json!(exports.1)));

    let format = Format::or_default(args.format);
    if format == Format::Json || format == Format::Jsonl {
        let doc: serde_json::Map<String, Value> =
            facts.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        crate::cmd::say_json(&Value::Object(doc), format)?;
    } else {
        let rows: Vec<Vec<Value>> = facts.into_iter().map(|(k, v)| vec![json!(k), v]).collect();
        output::print(format, &["field".to_string(), "value".to_string()], &rows)?;
    }
    Ok(exit::OK)
}

fn outcome(finished: bool, status: Option<i64>) -> &'static str {
    match (finished, status) {
        (false, _) => "did not finish (interrupted; the next run completes it)",
        (true, Some(0)) => "ok",
        (true, Some(2)) => "finished; some files were rejected, or could not be read or moved",
        (true, _) => "failed",
    }
}

/// Whether the master CSV and metadata on disk are those written from the store as it is.
fn exports_state(conn: &rusqlite::Connection, settings: &Settings) -> Result<(String, String)> {
    let (data, exported) = store::generations(conn)?;
    let expected = store::get_meta(conn, "export_checksum")?;
    let master = match Checksum::of_file(&settings.merged_file) {
        Err(_) => "missing".to_string(),
        Ok(_) if data != exported => "behind the store (the next run rewrites it)".to_string(),
        Ok(sum) if Some(sum.to_string()) == expected => "matches the store".to_string(),
        Ok(_) => "differs from what was last written (changed by hand?)".to_string(),
    };
    let metadata = match std::fs::read_to_string(&settings.metadata_file) {
        Err(_) => "missing".to_string(),
        Ok(text) => {
            let recorded = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["merged_file_xxh3_128"].as_str().map(String::from));
            if recorded.is_some() && recorded == expected && data == exported {
                "matches the store".to_string()
            } else {
                "does not match the store".to_string()
            }
        }
    };
    Ok((master, metadata))
}
