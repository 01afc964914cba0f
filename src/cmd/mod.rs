//! The subcommands, one file each: arguments first, then `execute`.

pub mod export;
pub mod files;
pub mod history;
pub mod query;
pub mod rebuild;
pub mod run;
pub mod status;
pub mod verify;
pub mod watch;

use std::io::Write;

use anyhow::bail;

use crate::config::Settings;

/// Prints a line for the user on stdout; a closed pipe (`| head`) is not an error.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Opens the store read-only for a command that only looks, or says there is none yet.
pub fn open_store(settings: &Settings) -> anyhow::Result<rusqlite::Connection> {
    match crate::store::open_read_only(&settings.store_file)? {
        Some(conn) => Ok(conn),
        None => bail!(
            "there is no store at {} yet; run `csv-watchdog run` first",
            settings.store_file.display()
        ),
    }
}

/// Prints one JSON document: pretty for `--format json`, on one line for `--format jsonl`.
pub fn say_json(doc: &serde_json::Value, format: crate::output::Format) -> anyhow::Result<()> {
    let text = match format {
        crate::output::Format::Jsonl => serde_json::to_string(doc)?,
        _ => serde_json::to_string_pretty(doc)?,
    };
    say(&text);
    Ok(())
}
