//! `csv-watchdog export`: writes the master CSV and the metadata JSON from the store on demand,
//! as the store is now or as it was right after a past moment or file.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset};

use crate::config::{self, Settings};
use crate::error::exit;
use crate::export::{self, Moment};
use crate::store::{self, ledger};

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Where to write the master CSV [default: merged_file from the config]
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Where to write the metadata JSON [default: metadata_file from the config; with
    /// --output, OUTPUT with .json added]
    #[arg(long, value_name = "PATH")]
    pub metadata: Option<PathBuf>,
    /// Export the state right after this moment: RFC 3339 (2026-03-01T12:00:00+01:00), or
    /// local "2026-03-01 12:00[:00]" or "2026-03-01" (its start); needs --output
    #[arg(long, value_name = "TIME", conflicts_with = "as_of_file")]
    pub as_of: Option<String>,
    /// Export the state right after this file was applied: a ledger id or a file name (its
    /// latest applied delivery); needs --output
    #[arg(long, value_name = "NAME-or-ID")]
    pub as_of_file: Option<String>,
}

pub fn execute(settings: &Settings, args: &ExportArgs) -> Result<i32> {
    let conn = crate::cmd::open_store(settings)?;
    let moment = moment(&conn, args)?;
    let output = match (&args.output, moment) {
        (Some(path), _) => config::absolute(path),
        (None, Moment::Now) => settings.merged_file.clone(),
        (None, Moment::AfterFile(_)) => {
            bail!(
                "a past state is never written over the master CSV; name where to write it with --output PATH"
            )
        }
    };
    let metadata = match (&args.metadata, moment) {
        (Some(path), _) => config::absolute(path),
        (None, Moment::Now) if args.output.is_none() => settings.metadata_file.clone(),
        (None, _) => {
            let mut name = output.clone().into_os_string();
            name.push(".json");
            PathBuf::from(name)
        }
    };
    check_targets(settings, &output, &metadata)?;
    if let Moment::AfterFile(id) = moment {
        check_history_covers(&conn, id)?;
    }
    let replaces_exports = moment == Moment::Now
        && output == settings.merged_file
        && metadata == settings.metadata_file;
    let report = if replaces_exports {
        // The configured exports: written under the run lock, and recorded as current in the
        // store so that `status` and the next run know them.
        drop(conn);
        let _lock = crate::lock::acquire(&settings.lock_file, settings.lock_timeout_seconds)
            .map_err(anyhow::Error::msg)?;
        let mut conn = store::open(&settings.store_file)?;
        let report = export::export(&conn, settings, moment, &output, &metadata)?;
        let (generation, _) = store::generations(&conn)?;
        store::mark_exported(&mut conn, generation, &report.checksum.to_string())?;
        report
    } else {
        export::export(&conn, settings, moment, &output, &metadata)?
    };
    crate::cmd::say(&format!(
        "wrote {} ({} rows, {} columns, xxh3-128 {}) and {}",
        output.display(),
        report.rows,
        report.columns.len(),
        report.checksum,
        metadata.display()
    ));
    Ok(exit::OK)
}

fn moment(conn: &rusqlite::Connection, args: &ExportArgs) -> Result<Moment> {
    if let Some(spec) = &args.as_of_file {
        let Some(entry) = ledger::find(conn, spec, true)? else {
            bail!("no file {spec:?} in the ledger; `csv-watchdog files` lists them");
        };
        if entry.status != "applied" {
            bail!(
                "{} (ledger id {}) was {}, not applied, so it changed nothing",
                entry.name,
                entry.id,
                entry.status
            );
        }
        return Ok(Moment::AfterFile(entry.id));
    }
    if let Some(text) = &args.as_of {
        let at = parse_time(text)?;
        let mut last = 0;
        for entry in ledger::applied(conn)? {
            let finished = DateTime::parse_from_rfc3339(&entry.finished_at).with_context(|| {
                format!("ledger entry {} has a bad time {:?}", entry.id, entry.finished_at)
            })?;
            if finished <= at {
                last = entry.id;
            }
        }
        return Ok(Moment::AfterFile(last));
    }
    Ok(Moment::Now)
}

/// Refuses export paths that would overwrite the store, each other, or feed the inbox.
fn check_targets(
    settings: &Settings,
    output: &std::path::Path,
    metadata: &std::path::Path,
) -> Result<()> {
    for path in [output, metadata] {
        if settings.is_store_file(path) {
            bail!("{} is the store; write the export elsewhere", path.display());
        }
        if settings.is_inbox_input(path) {
            bail!(
                "{} is inside watch_dir with a supported extension: the next run would read it as an input",
                path.display()
            );
        }
    }
    if config::absolute(output) == config::absolute(metadata) {
        bail!("--output and --metadata name the same file {}", output.display());
    }
    Ok(())
}

/// Parses a moment given on the command line; times without an offset are local.
pub fn parse_time(text: &str) -> Result<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t);
    }
    let local = |naive: chrono::NaiveDateTime| {
        naive.and_local_timezone(chrono::Local).earliest().map(|t| t.fixed_offset())
    };
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Some(t) = chrono::NaiveDateTime::parse_from_str(text, format).ok().and_then(local) {
            return Ok(t);
        }
    }
    if let Some(t) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(local)
    {
        return Ok(t);
    }
    bail!(
        "cannot read the time {text:?}; use RFC 3339 (2026-03-01T12:00:00+01:00), \"2026-03-01 12:00\" or \"2026-03-01\""
    )
}

/// Refuses a past state that the row history cannot rebuild exactly.
fn check_history_covers(conn: &rusqlite::Connection, file_id: i64) -> Result<()> {
    let meta = |name| -> Result<Option<i64>> {
        Ok(store::get_meta(conn, name)?.and_then(|v| v.parse().ok()))
    };
    if let Some(stops) = meta("history_stops_at")?
        && file_id >= stops
    {
        bail!(
            "row history was off (keep_history: false) from ledger entry {stops} on, so the state after entry {file_id} cannot be rebuilt"
        );
    }
    if let Some(starts) = meta("history_starts_after")?
        && file_id < starts
    {
        bail!(
            "row history starts after ledger entry {starts} (the store was upgraded then), so the state after entry {file_id} cannot be rebuilt"
        );
    }
    Ok(())
}
