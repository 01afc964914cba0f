//! `csv-watchdog run`: the main job. Take the lock, finish what an interrupted run left, apply
//! every stable file in the inbox (each in its own transaction), move it to the archive or the
//! rejected folder, and regenerate the master CSV and metadata when the store changed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::archive;
use crate::config::Settings;
use crate::error::{InputError, exit};
use crate::export;
use crate::fault;
use crate::inbox::{self, Candidate};
use crate::ingest::{self, Applied, FileError};
use crate::lock;
use crate::store::{self, ledger, ledger::RunTotals, ledger::Status};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Validate every stable file and report what would happen; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print only the summary line (and errors)
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs the main job once; returns the exit status.
pub fn execute(settings: &Settings, args: &RunArgs) -> Result<i32> {
    let started = Instant::now();
    let _lock = lock::acquire(&settings.lock_file, settings.lock_timeout_seconds)
        .map_err(anyhow::Error::msg)?;
    let mut job = Job::open(settings, args)?;

    if !args.dry_run {
        std::fs::create_dir_all(&settings.watch_dir)
            .with_context(|| format!("cannot create watch_dir {}", settings.watch_dir.display()))?;
        job.recover()?;
    }
    let run_id = ledger::start_run(&job.conn, args.dry_run, &store::now()).map_err(|e| {
        anyhow::anyhow!(
            "cannot write to the store {}: {}",
            settings.store_file.display(),
            store::plain(&e)
        )
    })?;
    let scan = inbox::scan(settings)
        .with_context(|| format!("cannot scan {}", settings.watch_dir.display()))?;
    for waiting in &scan.waiting {
        if waiting.unreadable {
            tracing::error!(file = %waiting.name, "{}", waiting.reason);
            eprintln!("csv-watchdog: {}: {}", waiting.name, waiting.reason);
            job.totals.unreadable += 1;
        } else {
            tracing::warn!(file = %waiting.name, "{}", waiting.reason);
            job.say(&format!("waiting   {}: {}", waiting.name, waiting.reason));
        }
    }
    for file in &scan.ready {
        job.process(run_id, file)?;
    }

    let exported = if args.dry_run { false } else { job.export_if_needed()? };
    let status = if job.totals.rejected > 0 || job.totals.unreadable > 0 {
        exit::REJECTED
    } else {
        exit::OK
    };
    ledger::finish_run(&job.conn, run_id, &job.totals, status, &store::now())?;
    if args.dry_run {
        job.conn.execute_batch("ROLLBACK")?;
    }
    job.summary(started, exported);
    Ok(status)
}

/// One run's state: the store, the settings, and the totals so far.
pub(crate) struct Job<'a> {
    pub conn: Connection,
    settings: &'a Settings,
    args: &'a RunArgs,
    pub totals: RunTotals,
    /// Rebuilding from the archive: files are already where they belong and stay there.
    in_place: bool,
    /// Files whose ledger row is committed but whose move failed: not to be seen as new.
    unmoved: HashSet<(String, String)>,
}

impl<'a> Job<'a> {
    fn open(settings: &'a Settings, args: &'a RunArgs) -> Result<Job<'a>> {
        let existed = settings.store_file.exists();
        let conn = if args.dry_run && !existed {
            store::open_in_memory()?
        } else {
            store::open(&settings.store_file)?
        };
        if args.dry_run {
            // Everything a dry run does happens inside this transaction, rolled back at the end.
            conn.execute_batch("BEGIN")?;
        }
        store::check_key_column(&conn, &settings.key_column)?;
        if let Err(e) = refuse_lost_store(&conn, settings) {
            drop(conn);
            if !existed {
                // Leave no empty store behind: the next run must see the same situation.
                crate::paths::remove_store_files(&settings.store_file).ok();
            }
            return Err(e);
        }
        Ok(Job::new(conn, settings, args, false))
    }

    pub fn new(
        conn: Connection,
        settings: &'a Settings,
        args: &'a RunArgs,
        in_place: bool,
    ) -> Job<'a> {
        Job {
            conn,
            settings,
            args,
            totals: RunTotals::default(),
            in_place,
            unmoved: HashSet::new(),
        }
    }

    fn say(&self, line: &str) {
        if !self.args.quiet {
            crate::cmd::say(line);
        }
    }

    /// Finishes what an interrupted run left: moves of committed files, stray temporary exports.
    fn recover(&mut self) -> Result<()> {
        for pending in ledger::pending_moves(&self.conn)? {
            let source = self.settings.watch_dir.join(&pending.name);
            let target = PathBuf::from(&pending.moved_to);
            let result = finish_move(&source, &target, &pending.checksum);
            match result {
                Ok(what) => {
                    if pending.status == Status::Rejected.as_str() {
                        write_reason_for(&target, &pending)?;
                    }
                    ledger::mark_moved(&self.conn, pending.id, &store::now())?;
                    tracing::info!(file = %pending.name, to = %target.display(), "recovered an interrupted run: {what}");
                    self.say(&format!("recovered {}: {what}", pending.name));
                }
                Err(e) => {
                    tracing::error!(file = %pending.name, "cannot finish moving the file: {e:#}");
                    eprintln!(
                        "csv-watchdog: {}: already {} but still in the inbox: {e:#}",
                        pending.name, pending.status
                    );
                    self.unmoved.insert((pending.name.clone(), pending.checksum.clone()));
                    self.totals.unreadable += 1;
                }
            }
        }
        for target in [&self.settings.merged_file, &self.settings.metadata_file] {
            if let Some(dir) = target.parent() {
                remove_stray_temps(dir, &export::temp_prefix(target));
            }
        }
        for dir in [&self.settings.archive_dir, &self.settings.rejected_dir] {
            remove_stray_temps(dir, archive::TEMP_PREFIX);
        }
        Ok(())
    }

    pub fn process(&mut self, run_id: i64, file: &Candidate) -> Result<()> {
        let checksum = file.checksum.to_string();
        if self.unmoved.contains(&(file.name.clone(), checksum.clone())) {
            return Ok(());
        }
        if let Some((first_id, when)) = ledger::find_applied(&self.conn, &file.name, &checksum)? {
            return self.record_duplicate(run_id, file, first_id, &when);
        }
        let started_at = store::now();
        fault::point("file-start");
        let destination = self.destination(&self.settings.archive_dir, file);
        let outcome = {
            let sp = self.conn.savepoint()?;
            let file_id = ledger::insert(
                &sp,
                run_id,
                file,
                Status::Applied,
                &path_text(&destination),
                &started_at,
            )?;
            match ingest::apply(&sp, file, file_id, self.settings, &started_at) {
                Ok(applied) => {
                    fault::point("before-commit");
                    sp.commit()?;
                    fault::point("after-commit");
                    Ok((file_id, applied))
                }
                Err(e) => Err(e),
            }
        };
        match outcome {
            Ok((file_id, applied)) => self.finish_applied(file, file_id, &destination, &applied),
            Err(FileError::Input(error)) => self.reject(run_id, file, &error, &started_at),
            Err(FileError::Changed) => {
                tracing::warn!(file = %file.name, "changed while being read; left for the next run");
                self.say(&format!(
                    "waiting   {}: changed while being read; left for the next run",
                    file.name
                ));
                Ok(())
            }
            Err(FileError::Io(e)) => {
                tracing::error!(file = %file.name, "cannot read: {e}");
                eprintln!(
                    "csv-watchdog: {}: cannot read the file: {e}; left in the inbox",
                    file.name
                );
                self.totals.unreadable += 1;
                Ok(())
            }
            Err(FileError::Store(e)) => Err(e)
                .with_context(|| format!("{}: store error; the file was not applied", file.name)),
        }
    }

    fn destination(&self, dir: &Path, file: &Candidate) -> PathBuf {
        if self.in_place {
            return file.path.clone();
        }
        archive::destination(dir, &file.name)
    }

    fn finish_applied(
        &mut self,
        file: &Candidate,
        file_id: i64,
        destination: &Path,
        applied: &Applied,
    ) -> Result<()> {
        let c = &applied.counts;
        self.totals.applied += 1;
        self.totals.inserted += c.inserted;
        self.totals.updated += c.updated;
        if !applied.repeats.is_empty() {
            let shown: Vec<String> = applied
                .repeats
                .iter()
                .map(|r| format!("{} (lines {} and {})", r.key, r.first_line, r.line))
                .collect();
            tracing::warn!(file = %file.name, "{} repeated key(s), the last row of each wins: {}", c.duplicate_keys, shown.join(", "));
            eprintln!(
                "csv-watchdog: warning: {}: {} repeated key(s), the last row of each wins: {}",
                file.name,
                c.duplicate_keys,
                shown.join(", ")
            );
        }
        let verb = if self.args.dry_run { "would apply" } else { "applied  " };
        let mut line = format!(
            "{verb} {}: {} rows read, {} inserted, {} updated, {} unchanged, {} repeated keys",
            file.name, c.rows_read, c.inserted, c.updated, c.unchanged, c.duplicate_keys
        );
        if !applied.added.is_empty() {
            line.push_str(&format!("; columns added: {}", applied.added.join(", ")));
        }
        if !applied.dropped.is_empty() {
            line.push_str(&format!("; columns dropped: {}", applied.dropped.join(", ")));
            tracing::info!(file = %file.name, "dropped column(s) no row holds a value for: {}", applied.dropped.join(", "));
        }
        if !self.args.dry_run {
            let moved = self.move_out(file, file_id, destination, None)?;
            line.push_str(&moved_to(moved, destination));
        }
        tracing::info!("{line} | keys: {}", self.key_sample(applied));
        self.say(&line);
        Ok(())
    }

    fn key_sample(&self, applied: &Applied) -> String {
        let c = &applied.counts;
        let distinct = c.inserted + c.updated + c.unchanged;
        let mut shown = applied.sample_keys.join(", ");
        if distinct as usize > applied.sample_keys.len() {
            shown.push_str(&format!(" ... ({distinct} total)"));
        }
        shown
    }

    /// Moves a file whose ledger row is committed, writes the reason beside a rejected file,
    /// then confirms the move in the ledger. Killed anywhere in between, the next run's
    /// recovery finishes the same steps.
    fn move_out(
        &mut self,
        file: &Candidate,
        file_id: i64,
        destination: &Path,
        reason: Option<&ledger::PendingMove>,
    ) -> Result<bool> {
        if file.path == destination {
            ledger::mark_moved(&self.conn, file_id, &store::now())?;
            return Ok(true);
        }
        if let Err(e) = archive::move_file(&file.path, destination) {
            tracing::error!(file = %file.name, "cannot move the file: {e}");
            eprintln!(
                "csv-watchdog: {}: recorded, but cannot be moved out of the inbox: {e}; the next run retries",
                file.name
            );
            self.unmoved.insert((file.name.clone(), file.checksum.to_string()));
            self.totals.unreadable += 1;
            return Ok(false);
        }
        fault::point("after-move");
        if let Some(reason) = reason {
            write_reason_for(destination, reason)?;
        }
        ledger::mark_moved(&self.conn, file_id, &store::now())?;
        Ok(true)
    }

    fn reject(
        &mut self,
        run_id: i64,
        file: &Candidate,
        error: &InputError,
        started_at: &str,
    ) -> Result<()> {
        self.totals.rejected += 1;
        let text = error.describe(&file.name);
        let verb = if self.args.dry_run { "would reject" } else { "rejected" };
        eprintln!("csv-watchdog: {verb} {text}");
        let destination = self.destination(&self.settings.rejected_dir, file);
        let file_id = self.commit_entry(
            run_id,
            file,
            Status::Rejected,
            &destination,
            started_at,
            Some((error, &text)),
        )?;
        if self.args.dry_run {
            return Ok(());
        }
        let pending = ledger::PendingMove {
            id: file_id,
            name: file.name.clone(),
            checksum: file.checksum.to_string(),
            status: Status::Rejected.as_str().into(),
            moved_to: path_text(&destination),
            rule: Some(error.rule.as_str().into()),
            line: error.line.map(|l| l as i64),
            column_name: error.column.as_ref().map(|c| c.name.clone()),
            error: Some(text.clone()),
        };
        if self.move_out(file, file_id, &destination, Some(&pending))? {
            tracing::error!("rejected {text} -> {}", destination.display());
            self.say(&format!("rejected  {} -> {}", file.name, destination.display()));
        }
        Ok(())
    }

    /// Records a rejected or duplicate file in the ledger, in its own small transaction.
    fn commit_entry(
        &mut self,
        run_id: i64,
        file: &Candidate,
        status: Status,
        destination: &Path,
        started_at: &str,
        error: Option<(&InputError, &str)>,
    ) -> Result<i64> {
        let sp = self.conn.savepoint()?;
        let id = ledger::insert(&sp, run_id, file, status, &path_text(destination), started_at)?;
        if let Some((error, text)) = error {
            ledger::set_error(&sp, id, error, text)?;
        }
        sp.commit()?;
        Ok(id)
    }

    fn record_duplicate(
        &mut self,
        run_id: i64,
        file: &Candidate,
        first_id: i64,
        when: &str,
    ) -> Result<()> {
        self.totals.duplicate += 1;
        let destination = self.destination(&self.settings.archive_dir, file);
        let file_id =
            self.commit_entry(run_id, file, Status::Duplicate, &destination, &store::now(), None)?;
        let verb = if self.args.dry_run { "would skip" } else { "duplicate" };
        let mut line = format!(
            "{verb} {} (checksum {}): already applied as ledger entry {first_id} at {when}; nothing changed",
            file.name, file.checksum
        );
        if !self.args.dry_run {
            let moved = self.move_out(file, file_id, &destination, None)?;
            line.push_str(&moved_to(moved, &destination));
        }
        tracing::info!("{line}");
        self.say(&line);
        Ok(())
    }

    /// Writes the master CSV and metadata when the store changed since they were last written,
    /// or when either is missing.
    pub fn export_if_needed(&mut self) -> Result<bool> {
        let (data, exported) = store::generations(&self.conn)?;
        let missing = !self.settings.merged_file.exists() || !self.settings.metadata_file.exists();
        if data == exported && !missing {
            return Ok(false);
        }
        if data == 0 {
            // No file was ever applied: there is no dataset to write yet.
            return Ok(false);
        }
        let report = export::export(
            &self.conn,
            self.settings,
            export::Moment::Now,
            &self.settings.merged_file,
            &self.settings.metadata_file,
        )?;
        fault::point("after-export");
        store::mark_exported(&mut self.conn, data, &report.checksum.to_string())?;
        tracing::info!(
            rows = report.rows,
            columns = report.columns.len(),
            "exported {} and {}",
            self.settings.merged_file.display(),
            self.settings.metadata_file.display()
        );
        Ok(true)
    }

    fn summary(&self, started: Instant, exported: bool) {
        let t = &self.totals;
        let mut line = format!(
            "{}{} applied, {} rejected, {} duplicate; {} rows inserted, {} updated",
            if self.args.dry_run { "dry run: " } else { "" },
            t.applied,
            t.rejected,
            t.duplicate,
            t.inserted,
            t.updated
        );
        if t.unreadable > 0 {
            line.push_str(&format!("; {} file(s) could not be read or moved", t.unreadable));
        }
        if exported {
            line.push_str(&format!("; wrote {}", self.settings.merged_file.display()));
        }
        line.push_str(&format!("; {:.2} s", started.elapsed().as_secs_f64()));
        tracing::info!("{line}");
        crate::cmd::say(&line);
    }
}

/// A store with an empty ledger next to an archive that holds files was lost or replaced: going
/// on would start the dataset afresh and shrink the master CSV to the new files alone.
fn refuse_lost_store(conn: &Connection, settings: &Settings) -> Result<()> {
    let files: i64 = conn.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))?;
    if files > 0 {
        return Ok(());
    }
    let archived = archive::list_archived(&settings.archive_dir).map(|a| a.len()).unwrap_or(0);
    if archived > 0 {
        anyhow::bail!(
            "the store {} has no record of any file, but the archive {} holds {archived} archived file(s): \
             the store was lost or replaced. Run `csv-watchdog rebuild --force` to rebuild it from the archive \
             (or move the archive aside to start afresh)",
            settings.store_file.display(),
            settings.archive_dir.display()
        );
    }
    Ok(())
}

/// Completes the move of a file recorded in the ledger. Says what was done.
fn finish_move(source: &Path, target: &Path, checksum: &str) -> Result<&'static str> {
    if source.exists() {
        let actual = crate::checksum::Checksum::of_file(source)?.to_string();
        if actual == checksum {
            archive::move_file(source, target)?;
            return Ok("moved the file the interrupted run had recorded");
        }
    }
    if target.exists() {
        return Ok("the file had been moved; confirmed the move");
    }
    Ok("the file is gone from the inbox; marked as moved")
}

fn write_reason_for(target: &Path, pending: &ledger::PendingMove) -> Result<()> {
    if !target.exists() {
        return Ok(());
    }
    let reason = archive::Reason {
        file: &pending.name,
        checksum: &pending.checksum,
        rule: pending.rule.as_deref().unwrap_or("unknown"),
        line: pending.line,
        column: pending.column_name.as_deref(),
        message: pending.error.as_deref().unwrap_or(""),
        rejected_at: &store::now(),
    };
    archive::write_reason(target, &reason)
        .with_context(|| format!("cannot write the reason next to {}", target.display()))
}

/// Removes temporary files (names starting with `prefix`) left in `dir` by a run that was
/// killed while writing them.
fn remove_stray_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::info!(file = %entry.path().display(), "removed a temporary file left by an interrupted run");
        }
    }
}

/// The end of a file's report line: where it went, or that it stayed.
fn moved_to(moved: bool, destination: &Path) -> String {
    if moved {
        format!(" -> {}", destination.display())
    } else {
        "; still in the inbox (the move failed)".to_string()
    }
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
