//! `csv-watchdog rebuild`: for a lost or corrupt store, builds a new one from the archived files
//! alone, applying them in the order they were archived (the stamp in each archived name).
//! The result holds the same rows and the same ledger of applied (and duplicate) files.

use anyhow::{Context, Result, bail};

use crate::archive;
use crate::checksum::Checksum;
use crate::cmd::run::{Job, RunArgs};
use crate::config::Settings;
use crate::error::exit;
use crate::inbox::Candidate;
use crate::lock;
use crate::paths::{remove_store_files, with_suffix};
use crate::store::{self, ledger};

#[derive(Debug, Clone, clap::Args)]
pub struct RebuildArgs {
    /// Replace an existing store (it is kept beside as <store>.bak-<stamp>)
    #[arg(long)]
    pub force: bool,
}

pub fn execute(settings: &Settings, args: &RebuildArgs) -> Result<i32> {
    let _lock = lock::acquire(&settings.lock_file, settings.lock_timeout_seconds)
        .map_err(anyhow::Error::msg)?;
    let target = &settings.store_file;
    if target.exists() && !args.force {
        bail!(
            "the store {} exists; rebuild replaces it only with --force (the old one is kept as a .bak file)",
            target.display()
        );
    }
    let files = archive::list_archived(&settings.archive_dir)
        .with_context(|| format!("cannot list the archive {}", settings.archive_dir.display()))?;
    let rejected = archive::list_archived(&settings.rejected_dir).unwrap_or_default();
    let building = with_suffix(target, ".rebuilding");
    remove_store_files(&building)?;

    let run_args = RunArgs { dry_run: false, quiet: true };
    let mut job = Job::new(store::open(&building)?, settings, &run_args, true);
    store::check_key_column(&job.conn, &settings.key_column)?;
    let run_id = ledger::start_run(&job.conn, false, &store::now())?;
    // Archived and rejected files in the order they were moved, so the ledger keeps its order.
    let mut all: Vec<(&archive::Archived, bool)> =
        files.iter().map(|f| (f, false)).chain(rejected.iter().map(|f| (f, true))).collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    for (file, was_rejected) in all {
        if was_rejected {
            record_rejected(&job.conn, run_id, &candidate(file)?)?;
        } else {
            job.process(run_id, &candidate(file)?)?;
        }
        keep_original_time(&job.conn, &file.stamp)?;
    }
    let totals = job.totals.clone();
    ledger::finish_run(&job.conn, run_id, &totals, exit::OK, &store::now())?;
    job.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    drop(job);

    let kept = if target.exists() {
        let backup =
            with_suffix(target, &format!(".bak-{}", chrono::Local::now().format("%Y%m%dT%H%M%S")));
        std::fs::rename(target, &backup)
            .with_context(|| format!("cannot move the old store to {}", backup.display()))?;
        remove_store_files(target)?;
        Some(backup)
    } else {
        None
    };
    std::fs::rename(&building, target)
        .with_context(|| format!("cannot put the new store at {}", target.display()))?;

    let mut job = Job::new(store::open(target)?, settings, &run_args, false);
    job.export_if_needed()?;
    crate::cmd::say(&format!(
        "rebuilt {} from {} archived files: {} applied, {} duplicate, {} rejected; {} rows inserted, {} updated{}",
        target.display(),
        files.len(),
        totals.applied,
        totals.duplicate,
        totals.rejected,
        totals.inserted,
        totals.updated,
        kept.map(|k| format!("; the old store is kept as {}", k.display())).unwrap_or_default()
    ));
    Ok(if totals.rejected > 0 { exit::REJECTED } else { exit::OK })
}

/// Dates the ledger entry just made at the moment in the archived name (when the file was first
/// applied, to the millisecond), not at the rebuild, so `--as-of` and `history` keep their times.
fn keep_original_time(conn: &rusqlite::Connection, stamp: &str) -> Result<()> {
    let Ok(naive) = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3f") else {
        return Ok(());
    };
    let at = naive
        .and_utc()
        .with_timezone(&chrono::Local)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    conn.execute(
        "UPDATE ledger SET started_at = ?1, finished_at = ?1 WHERE id = (SELECT max(id) FROM ledger)",
        [at],
    )?;
    Ok(())
}

/// Puts a rejected file back in the ledger, with the reason from the JSON file beside it.
fn record_rejected(conn: &rusqlite::Connection, run_id: i64, file: &Candidate) -> Result<()> {
    let json: serde_json::Value = std::fs::read_to_string(archive::reason_path(&file.path))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let reason = ledger::Reason {
        rule: json["rule"].as_str().unwrap_or("unknown").to_string(),
        line: json["line"].as_i64(),
        column: json["column"].as_str().map(String::from),
        text: json["message"].as_str().unwrap_or("(the reason file is missing)").to_string(),
    };
    let moved_to = file.path.to_string_lossy();
    let id =
        ledger::insert(conn, run_id, file, ledger::Status::Rejected, &moved_to, &store::now())?;
    ledger::set_reason(conn, id, &reason)?;
    ledger::mark_moved(conn, id, &store::now())?;
    Ok(())
}

fn candidate(file: &archive::Archived) -> Result<Candidate> {
    let meta = std::fs::metadata(&file.path)
        .with_context(|| format!("cannot read {}", file.path.display()))?;
    Ok(Candidate {
        path: file.path.clone(),
        name: file.name.clone(),
        size: meta.len(),
        mtime: meta.modified()?,
        checksum: Checksum::of_file(&file.path)?,
    })
}
