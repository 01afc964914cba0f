//! The whole validation and apply path, on a store in memory, as `run` does it: each file gets
//! a ledger row inside a savepoint, is applied, and is committed or rolled back and recorded as
//! rejected. The master CSV and metadata are then exported and read back.
//!
//! Input: one byte of settings (delimiter, history, column and row order, a required column),
//! then up to four files separated by the line `=====`.
//! Checks: no panic; a file is applied or refused with an input error naming the rule, never a
//! store or I/O error; after each file the catalog and the records table agree, every stored row
//! names an applied file, and the row counts add up; the export reads back with the rows and
//! columns the store holds.

use std::fs;
use std::path::{Path, PathBuf};

use csv_watchdog::checksum::Checksum;
use csv_watchdog::config::{self, ColumnOrder, RowOrder, Settings};
use csv_watchdog::export::{self, Moment};
use csv_watchdog::inbox::Candidate;
use csv_watchdog::ingest::{self, Applied, FileError};
use csv_watchdog::store::{self, catalog, ledger, ledger::Status};
use rusqlite::Connection;

use crate::delimiter;

/// The line that separates the files of one input.
pub const SEPARATOR: &[u8] = b"\n=====\n";
const MOST_FILES: usize = 4;

fn settings(bits: u8, scratch: &Path) -> Settings {
    let mut s = config::from_map(&serde_json::Map::new(), scratch).expect("the defaults are valid");
    s.csv_delimiter = delimiter(bits);
    s.keep_history = bits & 4 != 0;
    s.column_order = if bits & 8 != 0 { ColumnOrder::FirstSeen } else { ColumnOrder::Sorted };
    s.row_order = if bits & 16 != 0 { RowOrder::Key } else { RowOrder::Arrival };
    if bits & 32 != 0 {
        s.required_columns = vec!["region".into()];
    }
    s
}

/// A folder for the input files and exports of this process, in memory where the system has
/// /dev/shm (the export syncs its files; there that costs nothing).
fn scratch() -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
    base.join(format!("csv-watchdog-fuzz-{}", std::process::id()))
}

pub fn split_files(input: &[u8]) -> Vec<&[u8]> {
    let mut files = Vec::new();
    let mut rest = input;
    while files.len() + 1 < MOST_FILES {
        let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) else { break };
        files.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    files.push(rest);
    files
}

pub fn check(data: &[u8]) {
    let Some((&bits, input)) = data.split_first() else { return };
    let dir = scratch();
    fs::create_dir_all(&dir).expect("scratch folder");
    let settings = settings(bits, &dir);
    let mut conn = store::open_in_memory().expect("store in memory");
    store::check_key_column(&conn, &settings.key_column).unwrap();
    let run_id = ledger::start_run(&conn, false, &store::now()).unwrap();

    for (index, bytes) in split_files(input).into_iter().enumerate() {
        let file = candidate(&dir, index, bytes);
        apply_one(&mut conn, run_id, &file, &settings);
    }
    check_export(&conn, &settings, &dir);
    fs::remove_dir_all(&dir).ok();
}

fn candidate(dir: &Path, index: usize, bytes: &[u8]) -> Candidate {
    let name = format!("f{index}.csv");
    let path = dir.join(&name);
    fs::write(&path, bytes).expect("write the input file");
    let meta = fs::metadata(&path).unwrap();
    Candidate {
        checksum: Checksum::of_file(&path).unwrap(),
        path,
        name,
        size: meta.len(),
        mtime: meta.modified().unwrap(),
    }
}

/// Applies or rejects one file, checking the store after an applied one.
fn apply_one(conn: &mut Connection, run_id: i64, file: &Candidate, settings: &Settings) {
    let now = store::now();
    let outcome = {
        let sp = conn.savepoint().unwrap();
        let id = ledger::insert(&sp, run_id, file, Status::Applied, "archived", &now).unwrap();
        match ingest::apply(&sp, file, id, settings, &now) {
            Ok(applied) => {
                sp.commit().unwrap();
                Ok(applied)
            }
            Err(e) => Err(e),
        }
    };
    match outcome {
        Ok(applied) => check_store(conn, &applied),
        Err(FileError::Input(error)) => {
            let text = error.describe(&file.name);
            assert!(text.starts_with(&file.name), "{text}");
            let sp = conn.savepoint().unwrap();
            let id = ledger::insert(&sp, run_id, file, Status::Rejected, "rejected", &now).unwrap();
            ledger::set_error(&sp, id, &error, &text).unwrap();
            sp.commit().unwrap();
        }
        Err(other) => panic!("{}: not an input error: {other:?}", file.name),
    }
}

/// What `verify` checks of the store, and the counts of the file just applied.
fn check_store(conn: &Connection, applied: &Applied) {
    let c = &applied.counts;
    assert_eq!(c.rows_read, c.inserted + c.updated + c.unchanged + c.duplicate_keys, "{c:?}");

    let live = catalog::live_columns(conn).unwrap();
    let mut expected: Vec<String> = live.iter().map(|c| c.physical()).collect();
    expected.extend(["seq", "key", "file_id", "line"].map(String::from));
    expected.sort();
    expected.dedup();
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('record_data')").unwrap();
    let mut physical: Vec<String> =
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    physical.sort();
    assert_eq!(physical, expected, "the catalog and the records table disagree");
    assert_eq!(live.iter().filter(|c| c.is_key).count(), 1, "one live key column");

    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM records"), count("SELECT count(*) FROM record_data"));
    let orphans = count(
        "SELECT count(*) FROM record_data d LEFT JOIN ledger l ON l.id = d.file_id
         WHERE l.id IS NULL OR l.status <> 'applied'",
    );
    assert_eq!(orphans, 0, "stored rows that no applied file wrote");
}

fn check_export(conn: &Connection, settings: &Settings, dir: &Path) {
    let (generation, _) = store::generations(conn).unwrap();
    if generation == 0 {
        return;
    }
    let (csv_path, meta_path) = (dir.join("master.csv"), dir.join("metadata.json"));
    let report = export::export(conn, settings, Moment::Now, &csv_path, &meta_path)
        .unwrap_or_else(|e| panic!("export failed: {e}"));
    let stored: i64 = conn.query_row("SELECT count(*) FROM record_data", [], |r| r.get(0)).unwrap();
    assert_eq!(report.rows, stored as u64);

    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_path(&csv_path).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let header: Vec<&str> = rows[0].iter().collect();
    assert_eq!(header, report.columns, "the master CSV header");
    assert_eq!(rows.len() as u64 - 1, report.rows, "the master CSV row count");
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(&meta_path).unwrap()).expect("metadata is JSON");
    assert_eq!(meta["row_count"], report.rows);
}
