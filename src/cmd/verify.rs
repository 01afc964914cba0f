//! `csv-watchdog verify`: checks that the store, the archive, the rejected folder and the
//! exports agree, and says in plain words what does not. Exit 0 only when all is well.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::archive;
use crate::checksum::Checksum;
use crate::config::Settings;
use crate::error::exit;
use crate::export::{self, Moment};
use crate::store::{self, catalog};

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Do not re-hash archived files (faster; only checks that they exist)
    #[arg(long)]
    pub quick: bool,
}

/// What verification found.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    checked: Vec<String>,
}

impl Findings {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }
}

pub fn execute(settings: &Settings, args: &VerifyArgs) -> Result<i32> {
    let conn = crate::cmd::open_store(settings)?;
    let mut found = Findings::default();
    check_sqlite(&conn, &mut found)?;
    check_key_column(&conn, settings, &mut found)?;
    check_catalog(&conn, &mut found)?;
    check_records(&conn, &mut found)?;
    check_ledger_files(&conn, settings, args.quick, &mut found)?;
    check_exports(&conn, settings, &mut found)?;

    for line in &found.checked {
        crate::cmd::say(&format!("ok       {line}"));
    }
    for line in &found.problems {
        crate::cmd::say(&format!("PROBLEM  {line}"));
    }
    if found.problems.is_empty() {
        crate::cmd::say("all is well");
        Ok(exit::OK)
    } else {
        crate::cmd::say(&format!("{} problem(s) found", found.problems.len()));
        Ok(exit::REJECTED)
    }
}

fn check_sqlite(conn: &rusqlite::Connection, found: &mut Findings) -> Result<()> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    if lines == ["ok"] {
        found.checked.push("SQLite integrity check".into());
    } else {
        for line in lines.iter().take(20) {
            found.problem(format!("SQLite integrity check: {line}"));
        }
    }
    Ok(())
}

/// The store was built for the key column the config names.
fn check_key_column(
    conn: &rusqlite::Connection,
    settings: &Settings,
    found: &mut Findings,
) -> Result<()> {
    match store::get_meta(conn, "key_column")? {
        Some(stored) if !stored.eq_ignore_ascii_case(&settings.key_column) => found.problem(format!(
            "the store was built with key column {stored:?} but the config says key_column {:?}",
            settings.key_column
        )),
        _ => found.checked.push(format!("key column {:?}", settings.key_column)),
    }
    Ok(())
}

/// Every live value column has its physical column, and no physical column is unaccounted for.
fn check_catalog(conn: &rusqlite::Connection, found: &mut Findings) -> Result<()> {
    let live = catalog::live_columns(conn)?;
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('record_data')")?;
    let physical: HashSet<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let expected: HashSet<String> = live
        .iter()
        .map(|c| c.physical())
        .chain(["seq", "key", "file_id", "line"].map(String::from))
        .collect();
    let before = found.problems.len();
    for missing in expected.difference(&physical) {
        found.problem(format!(
            "the catalog lists column {missing} but the records table has no such column"
        ));
    }
    for extra in physical.difference(&expected) {
        found.problem(format!(
            "the records table has a column {extra} that the catalog does not list as live"
        ));
    }
    if live.iter().filter(|c| c.is_key).count() > 1 {
        found.problem("the catalog has more than one live key column".into());
    }
    if found.problems.len() == before {
        found.checked.push(format!("column catalog ({} live columns)", live.len()));
    }
    Ok(())
}

/// Every stored row names an applied file of the ledger.
fn check_records(conn: &rusqlite::Connection, found: &mut Findings) -> Result<()> {
    let orphans: i64 = conn.query_row(
        "SELECT count(*) FROM record_data d LEFT JOIN ledger l ON l.id = d.file_id
         WHERE l.id IS NULL OR l.status <> 'applied'",
        [],
        |r| r.get(0),
    )?;
    if orphans > 0 {
        found.problem(format!(
            "{orphans} stored row(s) name a file that is not an applied file of the ledger"
        ));
    } else {
        found.checked.push("every stored row names the applied file that wrote it".into());
    }
    Ok(())
}

/// Each file of the ledger is where the ledger says, with the checksum it says; nothing sits in
/// the archive or rejected folder that the ledger does not know.
fn check_ledger_files(
    conn: &rusqlite::Connection,
    settings: &Settings,
    quick: bool,
    found: &mut Findings,
) -> Result<()> {
    let mut stmt = conn
        .prepare("SELECT id, name, status, checksum, moved_to, moved_at FROM ledger ORDER BY id")?;
    let rows: Vec<(i64, String, String, String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
        .collect::<Result<_, _>>()?;
    let before = found.problems.len();
    let mut known: HashSet<PathBuf> = HashSet::new();
    for (id, name, status, checksum, moved_to, moved_at) in &rows {
        let path = PathBuf::from(moved_to);
        known.insert(path.clone());
        if moved_at.is_none() {
            found.problem(format!("{name} (ledger {id}, {status}) is recorded but not yet moved to {moved_to}; the next run finishes it"));
            continue;
        }
        if !path.exists() {
            found.problem(format!(
                "{name} (ledger {id}, {status}) should be at {moved_to}, but that file is missing"
            ));
            continue;
        }
        if status == "rejected" && !archive::reason_path(&path).exists() {
            found.problem(format!(
                "{name} (ledger {id}) was rejected but its reason file {} is missing",
                archive::reason_path(&path).display()
            ));
        }
        if !quick {
            let actual = Checksum::of_file(&path)?.to_string();
            if &actual != checksum {
                found.problem(format!("{moved_to} has checksum {actual}, but the ledger recorded {checksum} for {name} (ledger {id}): the file was changed"));
            }
        }
    }
    for dir in [&settings.archive_dir, &settings.rejected_dir] {
        for path in folder_files(dir) {
            let is_reason = path.extension().is_some_and(|e| e == "json")
                && known.contains(&path.with_extension(""));
            if !known.contains(&path) && !is_reason {
                found.problem(format!(
                    "{} is not in the ledger (copied in by hand, or from another store?)",
                    path.display()
                ));
            }
        }
    }
    if found.problems.len() == before {
        let how = if quick { "present" } else { "present with their recorded checksums" };
        found.checked.push(format!(
            "{} ledger file(s) {how}; no unknown files in the archive or rejected folder",
            rows.len()
        ));
    }
    Ok(())
}

fn folder_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect()
}

/// The master CSV and metadata are exactly what an export of the store writes now.
fn check_exports(
    conn: &rusqlite::Connection,
    settings: &Settings,
    found: &mut Findings,
) -> Result<()> {
    let (data, _) = store::generations(conn)?;
    if data == 0 {
        found.checked.push("no file applied yet, so no exports to compare".into());
        return Ok(());
    }
    let scratch = tempfile::tempdir()?;
    let csv = scratch.path().join("master.csv");
    let meta = scratch.path().join("metadata.json");
    export::export(conn, settings, Moment::Now, &csv, &meta)?;
    for (label, expected, actual) in
        [("master CSV", &csv, &settings.merged_file), ("metadata", &meta, &settings.metadata_file)]
    {
        match std::fs::read(actual) {
            Err(e) => {
                found.problem(format!("the {label} {} cannot be read: {e}", actual.display()))
            }
            Ok(bytes) if bytes == std::fs::read(expected)? => {
                found.checked.push(format!("{label} {} equals the store", actual.display()))
            }
            Ok(_) => found.problem(format!(
                "the {label} {} differs from the store; `csv-watchdog export` rewrites it",
                actual.display()
            )),
        }
    }
    Ok(())
}
