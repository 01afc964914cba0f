//! The recovery tools: `verify` must say "all is well" (exit 0) only when the store, the archive,
//! the rejected folder and the exports agree, and name each disagreement on a PROBLEM line (exit
//! 2); `rebuild` must build from the archive alone a store that holds the same records, columns,
//! ledger and master CSV as the one that was lost.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::{BIN, Run, Sandbox};
use rusqlite::types::Value as SqlValue;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn verify(sb: &Sandbox, quick: bool) -> Run {
    let run = if quick { sb.cmd(&["verify", "--quick"]) } else { sb.cmd(&["verify"]) };
    assert!(!run.text().contains("panicked"), "{run:?}");
    run
}

fn assert_all_is_well(sb: &Sandbox) {
    for quick in [false, true] {
        let run = verify(sb, quick);
        assert_eq!(run.status, 0, "quick={quick}\n{run:?}");
        assert!(run.stdout.contains("all is well"), "{run:?}");
        assert!(!run.stdout.contains("PROBLEM"), "{run:?}");
    }
}

/// Runs verify (full, or quick too when `quick_sees_it`), expects exit 2 and a PROBLEM line
/// holding every one of `words`.
fn assert_problem(sb: &Sandbox, quick_sees_it: bool, words: &[&str]) {
    let modes: &[bool] = if quick_sees_it { &[false, true] } else { &[false] };
    for &quick in modes {
        let run = verify(sb, quick);
        assert_eq!(run.status, 2, "quick={quick}\n{run:?}");
        assert!(!run.stdout.contains("all is well"), "{run:?}");
        let found = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("PROBLEM"))
            .any(|l| words.iter().all(|w| l.contains(w)));
        assert!(found, "quick={quick}: no PROBLEM line with {words:?}\n{run:?}");
    }
}

/// A sandbox with three files applied (one adding a column) and one rejected.
fn healthy() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,region\nc-1,eu\nc-2,us\n");
    sb.drop_bytes("b.csv", b"cluster_name,region,owner\nc-2,ap,ann\nc-3,eu,bob\n");
    sb.drop_bytes("bad.csv", b"cluster_name,region\nc-9\n");
    sb.run_expect(2);
    sb
}

fn archived(sb: &Sandbox, name: &str) -> PathBuf {
    let prefix = format!("{name}.");
    let found: Vec<String> =
        sb.names_in(&sb.archive()).into_iter().filter(|n| n.starts_with(&prefix)).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    sb.archive().join(&found[0])
}

fn run_with_fault(sb: &Sandbox, fault: &str) -> Run {
    let output = Command::new(BIN)
        .arg("--config")
        .arg(sb.path("config.json"))
        .arg("run")
        .env("CSV_WATCHDOG_FAULT", fault)
        .env_remove("RUST_LOG")
        .env_remove("CSV_MONITOR_CONFIG")
        .output()
        .unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_says_all_is_well_on_a_healthy_sandbox() {
    let sb = healthy();
    assert_all_is_well(&sb);
}

#[test]
fn verify_says_all_is_well_when_every_file_so_far_was_rejected() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("bad.csv", b"cluster_name,region\nc-9\n");
    sb.run_expect(2);
    assert_all_is_well(&sb);
}

#[test]
fn verify_names_an_archived_file_that_was_modified() {
    let sb = healthy();
    let path = archived(&sb, "a.csv");
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"c-4,eu\n");
    fs::write(&path, bytes).unwrap();
    assert_problem(&sb, false, &[&path.display().to_string(), "the file was changed", "a.csv"]);
    // --quick does not re-hash, by design: it only checks presence.
    let quick = verify(&sb, true);
    assert_eq!(quick.status, 0, "{quick:?}");
}

#[test]
fn verify_names_an_archived_file_that_was_deleted() {
    let sb = healthy();
    let path = archived(&sb, "b.csv");
    fs::remove_file(&path).unwrap();
    assert_problem(&sb, true, &["b.csv", "missing", &path.display().to_string()]);
}

#[test]
fn verify_names_a_rejected_file_whose_reason_is_gone() {
    let sb = healthy();
    let moved: Vec<String> = sb.names_in(&sb.rejected());
    let reason = moved.iter().find(|n| n.ends_with(".json")).expect("a reason JSON");
    fs::remove_file(sb.rejected().join(reason)).unwrap();
    assert_problem(&sb, true, &["bad.csv", "reason file", "missing"]);
}

#[test]
fn verify_names_an_unknown_file_dropped_into_the_archive() {
    let sb = healthy();
    let stranger = sb.archive().join("stranger.csv.20260101T000000.000");
    fs::write(&stranger, b"cluster_name\nx\n").unwrap();
    assert_problem(&sb, true, &[&stranger.display().to_string(), "not in the ledger"]);
}

#[test]
fn verify_names_an_unknown_file_in_the_rejected_folder() {
    let sb = healthy();
    let stranger = sb.rejected().join("notes.txt");
    fs::write(&stranger, b"hello").unwrap();
    assert_problem(&sb, true, &[&stranger.display().to_string(), "not in the ledger"]);
}

#[test]
fn verify_names_an_edited_master_csv() {
    let sb = healthy();
    let text = sb.master_text().replace("bob", "eve");
    fs::write(sb.master(), text).unwrap();
    assert_problem(&sb, true, &["master CSV", &sb.master().display().to_string(), "differs"]);
}

#[test]
fn verify_names_edited_metadata() {
    let sb = healthy();
    let text =
        fs::read_to_string(sb.metadata()).unwrap().replace("\"row_count\": 3", "\"row_count\": 4");
    fs::write(sb.metadata(), text).unwrap();
    assert_problem(&sb, true, &["metadata", "differs"]);
}

#[test]
fn verify_names_a_ledger_row_left_unmoved_and_the_next_run_finishes_it() {
    let mut sb = healthy();
    sb.drop_bytes("late.csv", b"cluster_name,region\nc-5,eu\n");
    let crashed = run_with_fault(&sb, "after-commit");
    assert_ne!(crashed.status, 0, "the fault point did not fire\n{crashed:?}");
    assert!(sb.inbox().join("late.csv").exists());

    assert_problem(&sb, true, &["late.csv", "applied", "not yet moved"]);

    let run = sb.run_expect(0);
    assert!(run.stdout.contains("recovered late.csv"), "{run:?}");
    let applied: i64 = sb
        .db()
        .query_row("SELECT count(*) FROM ledger WHERE name = 'late.csv'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, 1, "applied twice");
    assert_all_is_well(&sb);
}

#[test]
fn verify_without_a_store_is_a_clear_error_with_exit_1() {
    let sb = Sandbox::new();
    let run = verify(&sb, false);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("no store"), "{run:?}");
}

// ---------------------------------------------------------------------------------------------
// rebuild
// ---------------------------------------------------------------------------------------------

/// What a rebuild must give back.
#[derive(Debug, PartialEq)]
struct State {
    records: Vec<String>,
    live_columns: Vec<String>,
    ledger: Vec<String>,
    master: Vec<u8>,
}

fn dump(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let width = stmt.column_count();
    let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
    let mut rows: Vec<String> = stmt
        .query_map([], |row| {
            let cells: Vec<SqlValue> = (0..width).map(|i| row.get(i)).collect::<Result<_, _>>()?;
            Ok(format!("{cells:?}"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.insert(0, format!("{names:?}"));
    rows
}

fn state(sb: &Sandbox) -> State {
    let db = sb.db();
    let key: String = db
        .query_row("SELECT name FROM catalog WHERE is_key = 1 AND dropped_by IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    State {
        records: dump(&db, &format!("SELECT * FROM records ORDER BY \"{key}\"")),
        live_columns: sb.catalog(),
        ledger: dump(
            &db,
            "SELECT name, checksum, status, rows_read, rows_inserted, rows_updated, rows_unchanged
             FROM ledger WHERE status IN ('applied', 'duplicate') ORDER BY id",
        ),
        master: fs::read(sb.master()).unwrap(),
    }
}

/// Several runs: updates, a new column, a column emptied and dropped, a repeated delivery (a
/// duplicate), a rejected file, and a name delivered again with new content.
fn replayed() -> Sandbox {
    let mut sb = Sandbox::new();
    let first = b"cluster_name,region,nodes\nc-1,eu,3\nc-2,us,5\nc-3,ap,1\n";
    sb.drop_bytes("day1.csv", first);
    sb.run_expect(0);
    sb.drop_bytes("day2.csv", b"cluster_name,region,owner\nc-2,us,ann\nc-4,eu,bob\n");
    sb.drop_bytes("day3.csv", b"cluster_name,nodes,owner\nc-1,4,\nc-2,6,\nc-4,,\n");
    sb.run_expect(0);
    sb.drop_bytes("day1.csv", first);
    sb.drop_bytes("broken.csv", b"cluster_name,region\nc-5,eu,extra\n");
    sb.run_expect(2);
    sb.drop_bytes("day1.csv", b"cluster_name,region\nc-3,eu\n");
    sb.drop_bytes("day4.csv", b"cluster_name,region,tier\nc-6,us,gold\n");
    sb.run_expect(0);

    let ledger = state(&sb).ledger;
    assert!(ledger.iter().any(|l| l.contains("\"duplicate\"")), "{ledger:?}");
    let catalog = sb.catalog();
    assert!(catalog.contains(&"tier".to_string()), "{catalog:?}");
    assert!(!catalog.contains(&"owner".to_string()), "owner should have been dropped: {catalog:?}");
    sb
}

fn remove_store(sb: &Sandbox) {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", sb.store_path().display()));
        if path.exists() {
            fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn rebuild_after_losing_the_store_gives_back_records_columns_ledger_and_master() {
    let sb = replayed();
    let before = state(&sb);
    assert_all_is_well(&sb);

    remove_store(&sb);
    let run = sb.cmd(&["rebuild"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("rebuilt"), "{run:?}");
    let after = state(&sb);
    assert_eq!(after.records, before.records, "records");
    assert_eq!(after.live_columns, before.live_columns, "live columns");
    assert_eq!(after.ledger, before.ledger, "ledger");
    assert_eq!(
        String::from_utf8_lossy(&after.master),
        String::from_utf8_lossy(&before.master),
        "master CSV"
    );
    let rejected: i64 = sb
        .db()
        .query_row("SELECT count(*) FROM ledger WHERE status = 'rejected'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rejected, 1, "the rejected file is back in the ledger");
    assert_all_is_well(&sb);
}

#[test]
fn rebuild_refuses_to_replace_an_existing_store_without_force() {
    let sb = replayed();
    let store = fs::read(sb.store_path()).unwrap();
    let run = sb.cmd(&["rebuild"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("--force"), "{run:?}");
    assert!(!run.text().contains("panicked"), "{run:?}");
    assert_eq!(fs::read(sb.store_path()).unwrap(), store, "the store was touched");
    let backups: Vec<String> =
        sb.names_in(sb.dir.path()).into_iter().filter(|n| n.contains(".bak")).collect();
    assert!(backups.is_empty(), "{backups:?}");
}

#[test]
fn rebuild_with_force_keeps_the_old_store_as_a_bak_file_and_gives_back_the_same_state() {
    let sb = replayed();
    let before = state(&sb);
    let run = sb.cmd(&["rebuild", "--force"]);
    assert_eq!(run.status, 0, "{run:?}");
    let store_name = sb.store_path().file_name().unwrap().to_string_lossy().into_owned();
    let backups: Vec<String> = sb
        .names_in(sb.dir.path())
        .into_iter()
        .filter(|n| n.starts_with(&format!("{store_name}.bak")))
        .collect();
    assert_eq!(backups.len(), 1, "{:?}", sb.names_in(sb.dir.path()));
    assert!(run.stdout.contains(&backups[0]), "the backup is named\n{run:?}");

    // The backup is the old store, whole: it opens and holds the same ledger.
    let old = rusqlite::Connection::open(sb.dir.path().join(&backups[0])).unwrap();
    let old_ledger: i64 = old.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0)).unwrap();
    let new_ledger: i64 =
        sb.db().query_row("SELECT count(*) FROM ledger", [], |r| r.get(0)).unwrap();
    assert_eq!(old_ledger, new_ledger);

    let after = state(&sb);
    assert_eq!(after, before);
    assert_all_is_well(&sb);
}

/// Small files finish within the same millisecond; their archive stamps must still follow the
/// order they were applied in (each later than the one before), so that a rebuild replays them
/// in that order and not in name order.
#[test]
fn rebuild_keeps_the_order_of_files_applied_within_one_millisecond() {
    let mut sb = Sandbox::new();
    let names: Vec<String> = (0..30).rev().map(|i| format!("f{i:02}.csv")).collect();
    for (n, name) in names.iter().enumerate() {
        sb.drop_bytes(name, format!("cluster_name,value\nk,from {name}\nk{n},x\n").as_bytes());
    }
    sb.run_expect(0);
    let last = names.last().unwrap();
    assert_eq!(sb.value("k", "value"), Some(format!("from {last}")));

    let mut stamped: Vec<(String, String)> = sb
        .names_in(&sb.archive())
        .into_iter()
        .map(|archived| {
            let (name, stamp) = archived.split_at(7);
            (stamp.to_string(), name.to_string())
        })
        .collect();
    stamped.sort();
    let stamps: std::collections::BTreeSet<&String> = stamped.iter().map(|(s, _)| s).collect();
    assert_eq!(stamps.len(), names.len(), "two files share an archive stamp: {stamped:?}");
    let order: Vec<&str> = stamped.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(order, names.iter().map(String::as_str).collect::<Vec<_>>());

    let before = state(&sb);
    remove_store(&sb);
    let run = sb.cmd(&["rebuild"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(sb.value("k", "value"), Some(format!("from {last}")), "replayed out of order");
    assert_eq!(state(&sb).records, before.records);
}
