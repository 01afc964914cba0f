//! Resource faults and hostile inputs: a full disk during export, a file that cannot be read, a
//! file deleted during the stability wait, a missing or unusable archive folder, and inputs
//! built to break the reader. Each must end in a clear message naming the file, the documented
//! exit status (0 ok, 2 a file rejected, unreadable or not moved, 1 could not run), no panic,
//! and nothing lost: the file stays in the inbox or is archived exactly once, and the store, the
//! ledger and the exports agree afterwards.

mod common;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BIN, Run, Sandbox, xxh128_hex};
use csv_watchdog::error::Rule;
use csv_watchdog::ingest::read::{CsvFile, ReadError};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const GOOD: &[u8] = b"cluster_name,region,nodes\nc-01,eu,1\nc-02,us,2\n";

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

fn assert_no_panic(run: &Run) {
    assert!(!run.text().contains("panicked"), "the tool panicked\n{run:?}");
    assert!(run.status == 0 || run.status == 1 || run.status == 2, "{run:?}");
}

/// (name, status, moved_at is set) of every ledger row, oldest first.
fn ledger_rows(sb: &Sandbox) -> Vec<(String, String, bool)> {
    let db = sb.db();
    let mut stmt =
        db.prepare("SELECT name, status, moved_at IS NOT NULL FROM ledger ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Archived copies of `name` (the moved file, not a reason JSON).
fn archived(sb: &Sandbox, dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.");
    sb.names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && !n.ends_with(".json"))
        .map(|n| dir.join(n))
        .collect()
}

/// Whether `text` holds an SQLite message passed through raw (the store's own words, not a
/// sentence of csv-watchdog's that merely names SQLite).
fn raw_sqlite(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "store error",
        "sqlite_",
        "sqlite failure",
        "syntax error",
        "no such column",
        "no such table",
        "error code",
        "near \"",
    ]
    .iter()
    .any(|marker| lower.contains(marker))
}

fn verify(sb: &Sandbox) -> Run {
    let run = sb.cmd(&["verify"]);
    assert_no_panic(&run);
    run
}

fn assert_all_is_well(sb: &Sandbox) {
    let run = verify(sb);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("all is well"), "{run:?}");
}

/// A CSV file of `rows` rows, each about 60 bytes.
fn big_file(rows: usize) -> Vec<u8> {
    let mut bytes = b"cluster_name,region,note\n".to_vec();
    for i in 0..rows {
        bytes.extend_from_slice(format!("big-{i:06},eu-west,{}\n", "n".repeat(40)).as_bytes());
    }
    bytes
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `path`; None, with the reason
    /// printed, when that cannot be done here (not root, or no mount permission in a container).
    fn mount(test: &str, path: &Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            skip(test, "mounting a tmpfs needs root");
            return None;
        }
        fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { path: path.to_path_buf() }),
            Ok(out) => {
                skip(
                    test,
                    &format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr)),
                );
                None
            }
            Err(e) => {
                skip(test, &format!("cannot run mount: {e}"));
                None
            }
        }
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            // Busy (a test failed with a file open): detach it so nothing stays mounted.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A full disk during export
// ---------------------------------------------------------------------------------------------

#[test]
fn a_full_disk_during_export_keeps_the_old_master_and_the_next_run_writes_it() {
    const TEST: &str = "a_full_disk_during_export_keeps_the_old_master_and_the_next_run_writes_it";
    let mut sb = Sandbox::with_config(json!({
        "merged_file": "out/master.csv",
        "metadata_file": "out/metadata.json",
    }));
    let Some(disk) = Tmpfs::mount(TEST, &sb.path("out"), "64k") else { return };

    sb.drop_bytes("small.csv", GOOD);
    sb.run_expect(0);
    let old_master = fs::read(sb.master()).unwrap();
    let old_metadata = fs::read(sb.metadata()).unwrap();

    // About 150 KiB of master CSV: more than the whole tmpfs.
    let big = big_file(2500);
    sb.drop_bytes("big.csv", &big);
    let run = sb.run();
    assert_no_panic(&run);
    assert_eq!(run.status, 1, "a failed export is a run that could not finish\n{run:?}");
    let master = sb.master().display().to_string();
    assert!(run.stderr.contains(&format!("cannot write {master}")), "{run:?}");
    assert!(run.stderr.to_lowercase().contains("no space left"), "{run:?}");
    assert_eq!(fs::read(sb.master()).unwrap(), old_master, "the old master CSV was damaged");
    assert_eq!(fs::read(sb.metadata()).unwrap(), old_metadata, "the old metadata was damaged");

    // The file itself was applied and archived before the export: nothing is lost or repeated.
    assert_eq!(sb.row_count(), 2 + 2500);
    assert_eq!(archived(&sb, &sb.archive(), "big.csv").len(), 1);
    assert!(sb.names_in(&sb.inbox()).is_empty());

    // Space is back: no temporary file was left behind, and the next run writes the export.
    disk.resize("4m");
    assert_eq!(sb.names_in(&sb.path("out")), ["master.csv", "metadata.json"]);
    let run = sb.run_expect(0);
    assert!(run.stdout.contains("wrote"), "{run:?}");
    assert_eq!(sb.master_text().lines().count(), 1 + 2 + 2500);
    assert_eq!(sb.names_in(&sb.path("out")), ["master.csv", "metadata.json"]);
    let ledger = ledger_rows(&sb);
    assert_eq!(ledger.iter().filter(|r| r.1 == "applied").count(), 2, "{ledger:?}");
    assert_all_is_well(&sb);
    drop(disk);
}

#[test]
fn a_full_disk_while_the_metadata_is_written_keeps_both_old_exports_consistent_with_verify() {
    const TEST: &str =
        "a_full_disk_while_the_metadata_is_written_keeps_both_old_exports_consistent_with_verify";
    // The master CSV on a roomy disk, the metadata on a full one.
    let mut sb = Sandbox::with_config(json!({ "metadata_file": "meta/metadata.json" }));
    let Some(disk) = Tmpfs::mount(TEST, &sb.path("meta"), "64k") else { return };
    sb.drop_bytes("small.csv", GOOD);
    sb.run_expect(0);
    let filler = sb.path("meta/filler");
    fs::write(&filler, vec![b'x'; 60 * 1024]).ok();
    fs::write(sb.path("meta/filler2"), vec![b'x'; 8 * 1024]).ok();

    sb.drop_bytes("more.csv", b"cluster_name,region\nc-03,ap\n");
    let run = sb.run();
    assert_no_panic(&run);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("metadata.json"), "{run:?}");
    // The master CSV may already be new; verify must then say the metadata lags behind.
    let check = verify(&sb);
    assert_eq!(check.status, 2, "{check:?}");
    assert!(check.stdout.contains("PROBLEM"), "{check:?}");

    fs::remove_file(&filler).unwrap();
    fs::remove_file(sb.path("meta/filler2")).ok();
    sb.run_expect(0);
    assert_eq!(sb.names_in(&sb.path("meta")), ["metadata.json"]);
    assert_all_is_well(&sb);
    drop(disk);
}

// ---------------------------------------------------------------------------------------------
// A file that cannot be read
// ---------------------------------------------------------------------------------------------

/// Runs the binary as `nobody` (uid and gid 65534), which root is not: a file with mode 000 is
/// then really unreadable. The sandbox is handed to that user first.
fn run_as_nobody(sb: &Sandbox, args: &[&str]) -> Option<Run> {
    let chown = Command::new("chown").args(["-R", "65534:65534"]).arg(sb.dir.path()).status();
    if !chown.is_ok_and(|s| s.success()) {
        return None;
    }
    let output = Command::new(BIN)
        .arg("--config")
        .arg(sb.path("config.json"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CSV_MONITOR_CONFIG")
        .uid(65534)
        .gid(65534)
        .output()
        .ok()?;
    Some(Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Runs `args` as a user whom mode 000 locks out: as root through `nobody`, else as is.
fn run_locked_out(test: &str, sb: &Sandbox, args: &[&str]) -> Option<Run> {
    if !is_root() {
        return Some(sb.cmd(args));
    }
    let run = run_as_nobody(sb, args);
    if run.as_ref().is_none_or(|r| {
        r.status == -1 || r.stderr.contains("Permission denied (os error 13)") && r.status == 1
    }) {
        skip(test, "cannot run the binary as nobody here (is the checkout readable by all?)");
        return None;
    }
    run
}

#[test]
fn an_unreadable_file_is_named_left_in_the_inbox_and_applied_once_readable() {
    const TEST: &str = "an_unreadable_file_is_named_left_in_the_inbox_and_applied_once_readable";
    let mut sb = Sandbox::new();
    let locked = sb.drop_bytes("locked.csv", GOOD);
    sb.drop_bytes("other.csv", b"cluster_name,region\nc-09,eu\n");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();

    let Some(run) = run_locked_out(TEST, &sb, &["run"]) else { return };
    assert_no_panic(&run);
    assert!(run.text().contains("locked.csv"), "the unreadable file is not named\n{run:?}");
    assert!(run.text().contains("locked.csv: cannot read it"), "{run:?}");
    assert!(run.text().contains("Permission denied"), "{run:?}");
    assert!(locked.exists(), "the unreadable file left the inbox");
    let ledger = ledger_rows(&sb);
    assert_eq!(ledger, [("other.csv".to_string(), "applied".to_string(), true)]);
    assert_eq!(sb.row_count(), 1);
}

#[test]
fn an_unreadable_file_makes_the_run_exit_2_and_is_named_on_stderr_even_with_quiet() {
    const TEST: &str =
        "an_unreadable_file_makes_the_run_exit_2_and_is_named_on_stderr_even_with_quiet";
    let mut sb = Sandbox::new();
    let locked = sb.drop_bytes("locked.csv", GOOD);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let Some(run) = run_locked_out(TEST, &sb, &["run", "-q"]) else { return };
    assert_no_panic(&run);
    assert!(run.stderr.contains("locked.csv"), "{run:?}");
    assert_eq!(run.status, 2, "README: 2 when a file could not be read\n{run:?}");
}

#[test]
fn an_unreadable_file_is_applied_by_the_next_run_once_readable() {
    const TEST: &str = "an_unreadable_file_is_applied_by_the_next_run_once_readable";
    let mut sb = Sandbox::new();
    let locked = sb.drop_bytes("locked.csv", GOOD);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let Some(run) = run_locked_out(TEST, &sb, &["run"]) else { return };
    assert_no_panic(&run);
    assert!(run.text().contains("locked.csv"), "{run:?}");
    assert!(locked.exists());

    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
    let Some(run) = run_locked_out(TEST, &sb, &["run"]) else { return };
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(ledger_rows(&sb), [("locked.csv".to_string(), "applied".to_string(), true)]);
    assert_eq!(sb.row_count(), 2);
    let Some(check) = run_locked_out(TEST, &sb, &["verify"]) else { return };
    assert_eq!(check.status, 0, "{check:?}");
}

/// As root, mode 000 blocks nothing: say so instead of pretending to test it.
#[test]
fn mode_000_does_not_stop_root_so_the_unreadable_test_runs_as_nobody() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv");
    fs::write(&path, GOOD).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    assert!(fs::read(&path).is_ok(), "root reads a mode-000 file; the tests above run as nobody");
}

// ---------------------------------------------------------------------------------------------
// A file deleted or changed during the stability wait
// ---------------------------------------------------------------------------------------------

/// Starts a run with a stability wait of `wait` seconds, calls `during` after `at` seconds, and
/// returns the finished run.
fn run_with_wait(sb: &mut Sandbox, wait: f64, at: f64, during: impl FnOnce()) -> Run {
    sb.set("checksum_wait_seconds", json!(wait));
    let child = Command::new(BIN)
        .arg("--config")
        .arg(sb.path("config.json"))
        .arg("run")
        .env_remove("RUST_LOG")
        .env_remove("CSV_MONITOR_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs_f64(at));
    during();
    let output = child.wait_with_output().unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_file_deleted_during_the_stability_wait_leaves_no_trace_and_the_others_are_applied() {
    let mut sb = Sandbox::new();
    let doomed = sb.drop_bytes("doomed.csv", GOOD);
    sb.drop_bytes("kept.csv", b"cluster_name,region\nc-09,eu\n");
    let run = run_with_wait(&mut sb, 2.0, 1.0, || fs::remove_file(&doomed).unwrap());
    assert_no_panic(&run);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(ledger_rows(&sb), [("kept.csv".to_string(), "applied".to_string(), true)]);
    assert!(archived(&sb, &sb.archive(), "doomed.csv").is_empty());
    assert!(sb.names_in(&sb.rejected()).is_empty());
    assert_eq!(sb.row_count(), 1);
    assert_all_is_well(&sb);
}

#[test]
fn a_file_deleted_during_the_stability_wait_is_named() {
    let mut sb = Sandbox::new();
    let doomed = sb.drop_bytes("doomed.csv", GOOD);
    let run = run_with_wait(&mut sb, 2.0, 1.0, || fs::remove_file(&doomed).unwrap());
    assert!(run.text().contains("doomed.csv"), "{run:?}");
}

#[test]
fn a_file_that_grows_during_the_stability_wait_is_named_and_waits_for_the_next_run() {
    let mut sb = Sandbox::new();
    let growing = sb.drop_bytes("growing.csv", GOOD);
    let run = run_with_wait(&mut sb, 2.0, 1.0, || {
        let mut bytes = fs::read(&growing).unwrap();
        bytes.extend_from_slice(b"c-03,ap,3\n");
        fs::write(&growing, bytes).unwrap();
    });
    assert_no_panic(&run);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.text().contains("growing.csv: still changing"), "{run:?}");
    assert!(growing.exists());
    assert!(ledger_rows(&sb).is_empty());

    sb.set("checksum_wait_seconds", json!(0));
    sb.run_expect(0);
    assert_eq!(sb.row_count(), 3);
}

// ---------------------------------------------------------------------------------------------
// A missing or unusable archive folder
// ---------------------------------------------------------------------------------------------

#[test]
fn a_missing_archive_folder_is_created_on_demand() {
    let mut sb = Sandbox::with_config(json!({
        "archive_dir": "not/yet/archive",
        "rejected_dir": "not/yet/rejected",
    }));
    assert!(!sb.archive().exists());
    sb.drop_bytes("good.csv", GOOD);
    sb.drop_bytes("bad.csv", b"cluster_name,region\n,eu\n");
    let run = sb.run_expect(2);
    assert_no_panic(&run);
    assert_eq!(archived(&sb, &sb.archive(), "good.csv").len(), 1);
    assert_eq!(archived(&sb, &sb.rejected(), "bad.csv").len(), 1);
    assert!(sb.names_in(&sb.inbox()).is_empty());
    assert_all_is_well(&sb);
}

/// Makes `dir` an existing regular file, so nothing can be moved into it.
fn block_folder(dir: &Path) {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(dir, b"not a folder").unwrap();
}

#[test]
fn an_archive_path_that_is_a_file_keeps_the_file_in_the_inbox_and_a_later_run_finishes_the_move() {
    let mut sb = Sandbox::new();
    block_folder(&sb.archive());
    let inbox_file = sb.drop_bytes("good.csv", GOOD);

    let run = sb.run();
    assert_no_panic(&run);
    assert_eq!(run.status, 2, "README: 2 when a file could not be moved\n{run:?}");
    assert!(run.stderr.contains("good.csv"), "{run:?}");
    assert!(run.stderr.contains("cannot be moved out of the inbox"), "{run:?}");
    assert!(run.stderr.contains(&sb.archive().display().to_string()), "names the folder\n{run:?}");
    assert!(inbox_file.exists(), "the file must stay in the inbox");
    assert_eq!(ledger_rows(&sb), [("good.csv".to_string(), "applied".to_string(), false)]);
    assert_eq!(sb.row_count(), 2);

    // verify says what is pending.
    let check = verify(&sb);
    assert_eq!(check.status, 2, "{check:?}");
    assert!(
        check.stdout.contains("PROBLEM") && check.stdout.contains("not yet moved"),
        "{check:?}"
    );

    // Still broken: the next run neither applies it again nor records it twice.
    let run = sb.run();
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stderr.contains("good.csv"), "{run:?}");
    assert_eq!(ledger_rows(&sb).len(), 1, "{:?}", ledger_rows(&sb));

    // Fixed: the move is finished, once, and nothing is applied twice.
    fs::remove_file(sb.archive()).unwrap();
    let run = sb.run_expect(0);
    assert!(run.stdout.contains("recovered good.csv"), "{run:?}");
    assert!(!inbox_file.exists());
    let copies = archived(&sb, &sb.archive(), "good.csv");
    assert_eq!(copies.len(), 1);
    assert_eq!(fs::read(&copies[0]).unwrap(), GOOD);
    assert_eq!(ledger_rows(&sb), [("good.csv".to_string(), "applied".to_string(), true)]);
    let applied: i64 = sb
        .db()
        .query_row("SELECT count(*) FROM ledger WHERE rows_inserted > 0", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, 1);
    assert_eq!(sb.row_count(), 2);
    assert_all_is_well(&sb);
}

#[test]
fn a_rejected_path_that_is_a_file_keeps_the_file_in_the_inbox_and_a_later_run_finishes_the_move() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("good.csv", GOOD);
    sb.run_expect(0);
    block_folder(&sb.rejected());
    let bad = b"cluster_name,region\nc-01\n";
    let inbox_file = sb.drop_bytes("bad.csv", bad);

    let run = sb.run();
    assert_no_panic(&run);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stderr.contains("bad.csv: line 2"), "{run:?}");
    assert!(run.stderr.contains("cannot be moved out of the inbox"), "{run:?}");
    assert!(inbox_file.exists());
    assert_eq!(ledger_rows(&sb)[1], ("bad.csv".to_string(), "rejected".to_string(), false));

    let run = sb.run();
    assert_eq!(run.status, 2, "{run:?}");
    assert_eq!(ledger_rows(&sb).len(), 2, "{:?}", ledger_rows(&sb));

    fs::remove_file(sb.rejected()).unwrap();
    let run = sb.run_expect(0);
    assert!(run.stdout.contains("recovered bad.csv"), "{run:?}");
    assert!(!inbox_file.exists());
    let copies = archived(&sb, &sb.rejected(), "bad.csv");
    assert_eq!(copies.len(), 1);
    let reason: serde_json::Value = serde_json::from_slice(
        &fs::read(format!("{}.json", copies[0].display())).expect("the reason JSON"),
    )
    .unwrap();
    assert_eq!(reason["rule"], json!("ragged_row"));
    assert_eq!(reason["line"], json!(2));
    assert_eq!(ledger_rows(&sb)[1], ("bad.csv".to_string(), "rejected".to_string(), true));
    assert_eq!(ledger_rows(&sb).len(), 2);
    assert_all_is_well(&sb);
}

#[test]
fn an_unwritable_store_folder_is_a_clear_error_with_exit_1_and_the_inbox_untouched() {
    let mut sb = Sandbox::with_config(json!({ "store_file": "blocked/store.db" }));
    fs::write(sb.path("blocked"), b"not a folder").unwrap();
    let file = sb.drop_bytes("good.csv", GOOD);
    let run = sb.run();
    assert_no_panic(&run);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("cannot open the store"), "{run:?}");
    assert!(run.stderr.contains("store.db"), "{run:?}");
    assert!(file.exists());
    assert!(sb.names_in(&sb.archive()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs
// ---------------------------------------------------------------------------------------------

/// An input built to break a CSV reader or the store, and where its rejection must point: the
/// text after "<name>: " (line, and column where there is one), or None when it may be applied
/// or has no place to name.
struct Hostile {
    name: &'static str,
    bytes: Vec<u8>,
    place: Option<&'static str>,
}

fn hostile(name: &'static str, bytes: &[u8], place: Option<&'static str>) -> Hostile {
    Hostile { name, bytes: bytes.to_vec(), place }
}

fn hostile_inputs() -> Vec<Hostile> {
    let mut wide = b"cluster_name".to_vec();
    for i in 0..2100 {
        wide.extend_from_slice(format!(",c{i}").as_bytes());
    }
    wide.extend_from_slice(b"\nk-1");
    wide.extend(std::iter::repeat_n(b",v", 2100).flatten());
    wide.push(b'\n');
    let long_name = [b"cluster_name,".to_vec(), vec![b'n'; 70_000], b"\nk,v\n".to_vec()].concat();
    let blank_lines = [vec![b'\n'; 100_000], b"cluster_name\nk\n\n\nk,extra\n".to_vec()].concat();
    let sql_names = b"cluster_name,\"a\"\"); DROP TABLE ledger;--\",seq,file_id,line,rowid,c1\n\
                      k,1,2,3,4,5,6\n";
    vec![
        hostile(
            "unclosed_quote.csv",
            b"cluster_name,note\nc-1,\"never closed\nc-2,x\n",
            Some("line 2"),
        ),
        hostile("nul_in_key.csv", b"cluster_name,note\nc\x00-1,x\n", Some("line 2")),
        hostile("utf16le.csv", b"\xff\xfec\x00l\x00", Some("line 1")),
        hostile("cut_character.csv", b"cluster_name,note\nc-1,caf\xc3", Some("line 2")),
        hostile("lone_surrogate.csv", b"cluster_name,note\nc-1,\xed\xa0\x80\n", Some("line 2")),
        hostile("overlong.csv", b"cluster_name,note\nc-1,\xc0\xaf\n", Some("line 2")),
        hostile("bom_only.csv", b"\xef\xbb\xbf", None),
        hostile("cr_only.csv", b"\r\r\r", None),
        hostile("quote_only.csv", b"\"", None),
        hostile("header_is_quotes.csv", b"\"\"\"\",\"\"\ncluster_name\n", Some("line 1, column 2")),
        hostile(
            "ragged_after_quoted_breaks.csv",
            b"cluster_name,n\nc-1,\"a\r\nb\rc\"\nc-2\n",
            Some("line 5, column 2 (n)"),
        ),
        hostile(
            "empty_key_quoted.csv",
            b"cluster_name,n\n\"\",x\n",
            Some("line 2, column 1 (cluster_name)"),
        ),
        hostile("blank_key_header.csv", b" , cluster_name \nx,y\n", Some("line 1, column 1")),
        hostile("too_many_columns.csv", &wide, Some("line 1")),
        hostile("sql_names.csv", sql_names, None),
        hostile("control_chars.csv", b"cluster_name,\x1b[31mred\nk,\x07\x08\x7f\n", None),
        hostile("long_name.csv", &long_name, None),
        hostile("many_blank_lines.csv", &blank_lines, Some("line 100005, column 2")),
    ]
}

#[test]
fn hostile_inputs_end_in_a_named_outcome_never_a_panic_or_a_bare_store_error() {
    for Hostile { name, bytes, place } in hostile_inputs() {
        let mut sb = Sandbox::new();
        sb.drop_bytes("seed.csv", GOOD);
        sb.run_expect(0);
        sb.drop_bytes(name, &bytes);
        let run = sb.run();
        assert_no_panic(&run);
        assert_ne!(run.status, 1, "{name}: the run could not finish\n{run:?}");
        assert!(!raw_sqlite(&run.text()), "{name}: a raw SQLite message\n{run:?}");
        let ledger = ledger_rows(&sb);
        let last = ledger.last().unwrap();
        assert_eq!(last.0, name, "{name}: {ledger:?}");
        assert!(last.2, "{name}: not moved out of the inbox");
        if run.status == 2 {
            assert_eq!(last.1, "rejected");
            assert!(run.stderr.contains(&format!("csv-watchdog: rejected {name}")), "{run:?}");
            if let Some(place) = place {
                let wanted = format!("{name}: {place}: ");
                assert!(run.stderr.contains(&wanted), "{name}: wants {wanted:?}\n{run:?}");
            }
        } else {
            assert_eq!(last.1, "applied", "{name}: {run:?}");
            assert!(place.is_none(), "{name} was applied, expected a rejection at {place:?}");
        }
        assert_all_is_well(&sb);
        // The master CSV still reads back as CSV with one row per stored record.
        let mut reader = csv::ReaderBuilder::new().from_path(sb.master()).unwrap();
        assert_eq!(reader.records().count() as i64, sb.row_count(), "{name}");
    }
}

#[test]
fn every_shared_case_and_fixture_ends_in_a_named_outcome() {
    let mut inputs: Vec<PathBuf> = Vec::new();
    for dir in [
        common::shared_dir().join("cases/inputs"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
    ] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "csv") {
                inputs.push(path);
            }
        }
    }
    inputs.sort();
    assert!(inputs.len() > 20, "{inputs:?}");
    let mut sb = Sandbox::new();
    for path in &inputs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        sb.drop_file(path, &name);
    }
    let run = sb.run();
    assert_no_panic(&run);
    assert_eq!(run.status, 2, "some shared cases are meant to be rejected\n{run:?}");
    assert!(!raw_sqlite(&run.text()), "{run:?}");
    assert!(sb.names_in(&sb.inbox()).is_empty(), "{:?}", sb.names_in(&sb.inbox()));
    let ledger = ledger_rows(&sb);
    assert_eq!(ledger.len(), inputs.len(), "{ledger:?}");
    for (name, status, moved) in &ledger {
        assert!(moved, "{name} not moved");
        if status == "rejected" {
            assert!(run.stderr.contains(&format!("rejected {name}: ")), "{name}\n{run:?}");
        }
    }
    assert_all_is_well(&sb);
}

// ---------------------------------------------------------------------------------------------
// The reader fed in pieces (found by the `read` fuzz target)
// ---------------------------------------------------------------------------------------------

/// A source that hands out its bytes in pieces of the given sizes, then one byte at a time.
struct Pieces {
    bytes: Vec<u8>,
    sizes: Vec<usize>,
    at: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = if self.sizes.is_empty() { 1 } else { self.sizes.remove(0) };
        let n = want.min(buf.len()).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The error of reading `bytes` whole, or in pieces of `sizes`: (rule, line, message).
fn read_error(bytes: &[u8], sizes: Option<Vec<usize>>) -> (Rule, Option<u64>, String) {
    let mut file = match sizes {
        None => CsvFile::from_reader(io::Cursor::new(bytes.to_vec()), b','),
        Some(sizes) => CsvFile::from_reader(Pieces { bytes: bytes.to_vec(), sizes, at: 0 }, b','),
    };
    loop {
        match file.next_record() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error in {bytes:?}"),
            Err(ReadError::Input(e)) => return (e.rule, e.line, e.message),
            Err(ReadError::Io(e)) => panic!("{e}"),
        }
    }
}

#[test]
fn the_checksum_of_a_file_read_in_pieces_is_that_of_its_bytes() {
    let mut file =
        CsvFile::from_reader(Pieces { bytes: GOOD.to_vec(), sizes: vec![4], at: 0 }, b',');
    let mut lines = Vec::new();
    while let Some(record) = file.next_record().unwrap() {
        lines.push(record.line);
    }
    assert_eq!(lines, [1, 2, 3]);
    assert_eq!(file.checksum().to_string(), xxh128_hex(GOOD));
}

#[test]
fn a_byte_fault_right_after_a_lone_cr_names_its_own_line() {
    for bytes in [&b"k,v\rx,1\r\xff,2\r"[..], b"k,v\rx,1\r\x00,2\r"] {
        let (_, line, message) = read_error(bytes, None);
        assert_eq!(line, Some(3), "{message}");
        assert!(message.contains("physical line 3"), "{message}");
    }
    let mut sb = Sandbox::new();
    sb.drop_bytes("cr_then_bad_byte.csv", b"cluster_name,n\rc-1,x\r\xff,y\r");
    let run = sb.run_expect(2);
    assert!(run.stderr.contains("cr_then_bad_byte.csv: line 3: "), "{run:?}");
}

#[test]
fn a_bom_followed_by_a_bad_byte_is_an_encoding_fault_not_an_empty_file() {
    let (rule, line, _) = read_error(b"\xef\xbb\xbf\xffk,v\n", None);
    assert_eq!((rule, line), (Rule::Encoding, Some(1)));
    let (rule, line, _) = read_error(b"\xef\xbb\xbf\x00k,v\n", None);
    assert_eq!((rule, line), (Rule::NulByte, Some(1)));
    let mut sb = Sandbox::new();
    sb.drop_bytes("bom_then_bad_byte.csv", b"\xef\xbb\xbf\xffcluster_name,n\nc-1,x\n");
    let run = sb.run_expect(2);
    assert!(run.stderr.contains("[encoding]"), "{run:?}");
}

/// A source of `lines` blank lines followed by a small CSV file, made on the fly.
struct BlankLines {
    left: u64,
    tail: &'static [u8],
}

impl Read for BlankLines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left > 0 {
            let n = (buf.len() as u64).min(self.left) as usize;
            buf[..n].fill(b'\n');
            self.left -= n as u64;
            return Ok(n);
        }
        let n = buf.len().min(self.tail.len());
        buf[..n].copy_from_slice(&self.tail[..n]);
        self.tail = &self.tail[n..];
        Ok(n)
    }
}

#[test]
fn blank_lines_before_a_record_take_no_memory_in_proportion() {
    let mut file = CsvFile::from_reader(
        BlankLines { left: 8_000_000, tail: b"cluster_name,n\nc-1,x\n" },
        b',',
    );
    let before = alloc_meter::peak_reset();
    let header = file.next_record().unwrap().unwrap().line;
    let grew = alloc_meter::peak_reset().saturating_sub(before);
    assert_eq!(header, 8_000_001);
    assert!(grew < 16 << 20, "reading past 8 million blank lines took {} MiB", grew >> 20);
}

/// Counts the bytes allocated by the current thread, to catch memory that grows with the input.
mod alloc_meter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    struct Meter;

    unsafe impl GlobalAlloc for Meter {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = LIVE.try_with(|live| {
                live.set(live.get() + layout.size());
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
            });
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(layout.size())));
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static METER: Meter = Meter;

    /// The peak since the last call (as bytes live on this thread), then starts a new peak.
    pub fn peak_reset() -> usize {
        let peak = PEAK.with(Cell::get);
        PEAK.with(|p| p.set(LIVE.with(Cell::get)));
        peak
    }
}

/// A file whose first 64 KiB read ends with a CR (alone, or the first half of a CRLF) and whose
/// next read holds a NUL after its first byte: the byte checker counts the line break carried
/// over from the previous read in a scratch counter that starts at offset 0, and subtracts 1.
fn fault_after_a_cr_at_the_read_boundary(next: &[u8]) -> Vec<u8> {
    let mut bytes = b"cluster_name,pad\np-1,".to_vec();
    bytes.resize(65535, b'x');
    bytes.push(b'\r');
    bytes.extend_from_slice(next);
    bytes
}

#[test]
fn a_byte_fault_after_a_cr_at_the_read_boundary_does_not_panic() {
    for (label, next) in [("cr", &b"p\x00-2,a\r"[..]), ("crlf", b"\np\x00-2,a\r\n")] {
        let name = format!("boundary_{label}_nul.csv");
        let mut sb = Sandbox::new();
        sb.drop_bytes(&name, &fault_after_a_cr_at_the_read_boundary(next));
        let run = sb.run();
        assert_no_panic(&run);
        assert_eq!(run.status, 2, "{run:?}");
        assert!(run.stderr.contains(&format!("{name}: line 3: NUL byte")), "{run:?}");
    }
}

#[test]
fn a_line_break_in_a_header_name_never_stops_the_run() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("newline_in_header.csv", b"cluster_name,\"multi\nline\"\nc-1,x\n");
    sb.drop_bytes("later.csv", b"cluster_name,region\nc-2,eu\n");
    let run = sb.run();
    assert_no_panic(&run);
    assert_ne!(run.status, 1, "one input file stopped the whole run\n{run:?}");
    assert!(!raw_sqlite(&run.text()), "{run:?}");
    assert!(sb.names_in(&sb.inbox()).is_empty(), "{:?}", sb.names_in(&sb.inbox()));
    assert_eq!(sb.value("c-2", "region").as_deref(), Some("eu"), "the later file was not applied");
}
