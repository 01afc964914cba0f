//! The audit commands end to end: `history`, `export --as-of/--as-of-file`, `query`, `files` and
//! `status`, checked against values this file computes on its own from the input files, and the
//! upgrade of a store written by schema version 1.
//!
//! Most checks run against one replay of the S&P 500 snapshots (`shared/data/sp500-history`),
//! one file per run, built once per test process and shared read-only by the tests that need
//! it. Anything that writes, or could write if the product were wrong, gets its own sandbox.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Local, SubsecRound, TimeDelta};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use common::{BIN, Run, Sandbox};

// ---------------------------------------------------------------------------------------------
// Reading the input files independently of csv-watchdog.

/// One input file as this test reads it.
struct Snapshot {
    name: String,
    /// Header names, trimmed.
    header: Vec<String>,
    /// A non-blank row has a field count different from the header's: the file must be rejected.
    ragged: bool,
    rows: Vec<Row>,
}

/// A data row: its key, the physical line where it starts, and its non-empty values by column.
#[derive(Debug, Clone)]
struct Row {
    key: String,
    line: u64,
    values: BTreeMap<String, String>,
}

fn read_snapshot(path: &Path, key_column: &str) -> Snapshot {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut records = reader.records();
    let header: Vec<String> = records
        .next()
        .expect("a header")
        .expect("a readable header")
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let key_at = header.iter().position(|h| h == key_column).expect("the key column");
    let mut snapshot = Snapshot {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        header: header.clone(),
        ragged: false,
        rows: Vec::new(),
    };
    for record in records {
        let record = record.expect("a readable record");
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != header.len() {
            snapshot.ragged = true;
            continue;
        }
        let values = header
            .iter()
            .zip(record.iter())
            .enumerate()
            .filter(|(at, (_, value))| *at != key_at && !value.is_empty())
            .map(|(_, (name, value))| (name.clone(), value.to_string()))
            .collect();
        snapshot.rows.push(Row {
            key: record[key_at].to_string(),
            line: record.position().expect("a position").line(),
            values,
        });
    }
    snapshot
}

/// The rows as the store should hold them after `snapshots` (ragged ones skipped): each row
/// replaced whole by the last file that has its key.
fn final_state(snapshots: &[Snapshot]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut state = BTreeMap::new();
    for snapshot in snapshots.iter().filter(|s| !s.ragged) {
        for row in &snapshot.rows {
            state.insert(row.key.clone(), row.values.clone());
        }
    }
    state
}

/// One version of a row as `history` should report it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    file: String,
    line: u64,
    kind: String,
    /// (column, old, new) for every column whose value changed.
    changes: BTreeSet<(String, Option<String>, Option<String>)>,
}

/// The versions of `key` oldest first, and the files that re-sent it unchanged.
fn expected_history(snapshots: &[Snapshot], key: &str) -> (Vec<Version>, Vec<String>) {
    let mut versions = Vec::new();
    let mut resent = Vec::new();
    let mut before: Option<BTreeMap<String, String>> = None;
    for snapshot in snapshots.iter().filter(|s| !s.ragged) {
        let Some(row) = snapshot.rows.iter().rev().find(|r| r.key == key) else { continue };
        if before.as_ref() == Some(&row.values) {
            resent.push(snapshot.name.clone());
            continue;
        }
        let old = before.clone().unwrap_or_default();
        let columns: BTreeSet<&String> = old.keys().chain(row.values.keys()).collect();
        let changes = columns
            .into_iter()
            .filter(|c| old.get(*c) != row.values.get(*c))
            .map(|c| (c.clone(), old.get(c).cloned(), row.values.get(c).cloned()))
            .collect();
        let kind = if before.is_none() { "insert" } else { "update" };
        versions.push(Version {
            file: snapshot.name.clone(),
            line: row.line,
            kind: kind.into(),
            changes,
        });
        before = Some(row.values.clone());
    }
    (versions, resent)
}

/// The sector of a row: the column was "Sector" before it was renamed "GICS Sector".
fn sector(values: &BTreeMap<String, String>) -> Option<String> {
    values.get("GICS Sector").or_else(|| values.get("Sector")).cloned()
}

// ---------------------------------------------------------------------------------------------
// The shared replay of the S&P 500 snapshots.

const SP500_KEY: &str = "Symbol";
/// The replay waits a little over a second after this file, so that a moment strictly between
/// two runs can be named even at whole-second precision.
const PAUSE_AFTER: usize = 100;
/// A company whose sector changed several times in the snapshots.
const SECTOR_CHANGER: &str = "NFLX";

struct Replay {
    dir: PathBuf,
    snapshots: Vec<Snapshot>,
    /// Exit status of the run after each file.
    statuses: Vec<i32>,
    /// The master CSV and metadata JSON as they were right after each run.
    masters: Vec<Option<Vec<u8>>>,
    metadata: Vec<Option<Vec<u8>>>,
}

impl Replay {
    fn cmd(&self, args: &[&str]) -> Run {
        run_binary(&self.dir, args, &[])
    }

    fn db(&self) -> Connection {
        Connection::open_with_flags(
            self.dir.join("csv_watchdog.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the replay store")
    }

    /// (id, finished_at) of the ledger entry for a file name.
    fn ledger_entry(&self, name: &str) -> (i64, String) {
        self.db()
            .query_row("SELECT id, finished_at FROM ledger WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap_or_else(|e| panic!("no ledger entry for {name}: {e}"))
    }

    fn applied(&self) -> Vec<&Snapshot> {
        self.snapshots.iter().filter(|s| !s.ragged).collect()
    }
}

fn replay() -> &'static Replay {
    static REPLAY: OnceLock<Replay> = OnceLock::new();
    REPLAY.get_or_init(build_replay)
}

/// Applies the snapshots in name order, one per run, keeping the exports after each run. The
/// folder lives under cargo's target tmp dir (a static is never dropped, so a temp dir would
/// leak); folders left by earlier test processes are removed first.
fn build_replay() -> Replay {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    remove_stale_replays(root);
    let dir = root.join(format!("audit-sp500-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("csv_inbox")).unwrap();
    let config =
        json!({"key_column": SP500_KEY, "checksum_wait_seconds": 0, "lock_timeout_seconds": 5});
    fs::write(dir.join("config.json"), config.to_string()).unwrap();

    let source = common::shared_dir().join("data/sp500-history");
    let mut names: Vec<String> = fs::read_dir(&source)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    names.sort();
    let mut replay = Replay {
        dir,
        snapshots: Vec::new(),
        statuses: Vec::new(),
        masters: Vec::new(),
        metadata: Vec::new(),
    };
    for (index, name) in names.iter().enumerate() {
        replay.snapshots.push(read_snapshot(&source.join(name), SP500_KEY));
        fs::copy(source.join(name), replay.dir.join("csv_inbox").join(name)).unwrap();
        replay.statuses.push(replay.cmd(&["run", "-q"]).status);
        replay.masters.push(fs::read(replay.dir.join("final_clusters_data.csv")).ok());
        replay.metadata.push(fs::read(replay.dir.join("final_clusters_metadata.json")).ok());
        if index == PAUSE_AFTER {
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
    replay
}

fn remove_stale_replays(root: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("audit-sp500-") else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs the binary with the config of `dir`, and extra environment variables.
fn run_binary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(BIN)
        .arg("--config")
        .arg(dir.join("config.json"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CSV_MONITOR_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run csv-watchdog");
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs and asserts exit status 0; returns stdout.
fn ok(run: Run) -> String {
    assert_eq!(run.status, 0, "command failed\n{run:?}");
    run.stdout
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// CSV output as a header and rows.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let mut records = reader.records().map(|r| r.unwrap().iter().map(String::from).collect());
    let header = records.next().expect("a header line");
    (header, records.collect())
}

// ---------------------------------------------------------------------------------------------
// The replay itself.

#[test]
fn replay_applies_each_snapshot_and_rejects_those_with_ragged_rows() {
    let replay = replay();
    assert_eq!(replay.snapshots.len(), 190);
    for (snapshot, status) in replay.snapshots.iter().zip(&replay.statuses) {
        let expected = if snapshot.ragged { 2 } else { 0 };
        assert_eq!(*status, expected, "run after {}", snapshot.name);
    }
    let db = replay.db();
    let mut stmt =
        db.prepare("SELECT name FROM ledger WHERE status = 'rejected' ORDER BY id").unwrap();
    let rejected: Vec<String> =
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let ragged: Vec<String> =
        replay.snapshots.iter().filter(|s| s.ragged).map(|s| s.name.clone()).collect();
    assert_eq!(rejected, ragged);
    assert!(!ragged.is_empty(), "the premise: some snapshots have ragged rows");
}

// ---------------------------------------------------------------------------------------------
// history

#[test]
fn history_json_of_a_company_whose_sector_changed_shows_each_change_and_its_file() {
    let replay = replay();
    let (versions, resent) = expected_history(&replay.snapshots, SECTOR_CHANGER);
    let doc = parse_json(&ok(replay.cmd(&["history", SECTOR_CHANGER, "--format", "json"])));
    assert_eq!(doc["key"], json!(SECTOR_CHANGER));

    // Versions newest first, numbered from the oldest, each with its file, line and changes.
    let listed = doc["versions"].as_array().expect("versions");
    assert_eq!(listed.len(), versions.len(), "{doc:#}");
    for (n, (got, want)) in listed.iter().zip(versions.iter().rev()).enumerate() {
        assert_eq!(got["version"], json!(versions.len() - n));
        assert_eq!(got["file"], json!(want.file));
        assert_eq!(got["file_id"], json!(replay.ledger_entry(&want.file).0));
        assert_eq!(got["applied_at"], json!(replay.ledger_entry(&want.file).1));
        assert_eq!(got["line"], json!(want.line), "line of the row in {}", want.file);
        assert_eq!(got["kind"], json!(want.kind), "kind of the version from {}", want.file);
        let changes: BTreeSet<(String, Option<String>, Option<String>)> = got["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let text = |v: &Value| v.as_str().map(String::from);
                (c["column"].as_str().unwrap().to_string(), text(&c["old"]), text(&c["new"]))
            })
            .collect();
        assert_eq!(changes, want.changes, "changes made by {}", want.file);
    }
    let resent_files: Vec<&str> = doc["resent_unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(resent_files, resent);

    // The sector, rebuilt from the reported changes, moves exactly when the snapshots say so.
    let mut state: BTreeMap<String, String> = BTreeMap::new();
    let mut reported = Vec::new();
    for version in listed.iter().rev() {
        let before = sector(&state);
        for change in version["changes"].as_array().unwrap() {
            let column = change["column"].as_str().unwrap().to_string();
            match change["new"].as_str() {
                Some(value) => state.insert(column, value.to_string()),
                None => state.remove(&column),
            };
        }
        if sector(&state) != before {
            reported.push((version["file"].as_str().unwrap().to_string(), sector(&state)));
        }
    }
    let mut expected = Vec::new();
    let mut last = None;
    for snapshot in replay.applied() {
        if let Some(row) = snapshot.rows.iter().find(|r| r.key == SECTOR_CHANGER)
            && sector(&row.values) != last
        {
            last = sector(&row.values);
            expected.push((snapshot.name.clone(), last.clone()));
        }
    }
    assert!(expected.len() >= 4, "the premise: {SECTOR_CHANGER} changed sector: {expected:?}");
    assert_eq!(reported, expected);
}

#[test]
fn history_csv_of_a_company_lists_one_line_per_changed_column_newest_first() {
    let replay = replay();
    let (versions, _) = expected_history(&replay.snapshots, SECTOR_CHANGER);
    let (header, rows) =
        parse_csv(&ok(replay.cmd(&["history", SECTOR_CHANGER, "--format", "csv"])));
    assert_eq!(
        header,
        ["version", "file", "file_id", "line", "applied_at", "column", "old", "new"]
    );

    let numbers: Vec<usize> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] >= w[1]), "newest first: {numbers:?}");
    let got: BTreeSet<Vec<String>> = rows.into_iter().collect();
    let mut want = BTreeSet::new();
    for (n, version) in versions.iter().enumerate() {
        let (id, applied_at) = replay.ledger_entry(&version.file);
        for (column, old, new) in &version.changes {
            want.insert(vec![
                (n + 1).to_string(),
                version.file.clone(),
                id.to_string(),
                version.line.to_string(),
                applied_at.clone(),
                column.clone(),
                old.clone().unwrap_or_default(),
                new.clone().unwrap_or_default(),
            ]);
        }
    }
    assert_eq!(got, want);
}

#[test]
fn history_blame_names_the_file_that_last_set_each_current_value() {
    let replay = replay();
    let (versions, _) = expected_history(&replay.snapshots, SECTOR_CHANGER);
    let mut owner: BTreeMap<String, (String, String, u64)> = BTreeMap::new();
    for version in &versions {
        for (column, _, new) in &version.changes {
            match new {
                Some(value) => owner
                    .insert(column.clone(), (value.clone(), version.file.clone(), version.line)),
                None => owner.remove(column),
            };
        }
    }
    let (header, rows) = parse_csv(&ok(replay.cmd(&["history", SECTOR_CHANGER, "--blame"])));
    assert_eq!(header, ["column", "value", "file", "file_id", "line", "applied_at"]);
    let got: BTreeMap<String, (String, String, u64)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r[3], replay.ledger_entry(&r[2]).0.to_string());
            (r[0].clone(), (r[1].clone(), r[2].clone(), r[4].parse().unwrap()))
        })
        .collect();
    assert_eq!(got, owner);
}

#[test]
fn history_of_an_unknown_key_fails_and_keys_compare_exactly() {
    let replay = replay();
    for key in ["NO-SUCH-SYMBOL", &SECTOR_CHANGER.to_lowercase()] {
        let run = replay.cmd(&["history", key]);
        assert_eq!(run.status, 1, "{run:?}");
        assert!(run.stderr.contains(key), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// export --as-of-file / --as-of

/// Files worth rebuilding: the first applied after each rejected file, each header change
/// (column renames), and a few others spread over the replay, the last included.
fn export_points(replay: &Replay) -> Vec<usize> {
    let mut points = BTreeSet::from([40, PAUSE_AFTER, replay.snapshots.len() - 1]);
    let mut last_header: Option<&Vec<String>> = None;
    for (index, snapshot) in replay.snapshots.iter().enumerate() {
        if snapshot.ragged {
            continue;
        }
        if index > 0 && replay.snapshots[index - 1].ragged {
            points.insert(index);
        }
        if last_header.is_some_and(|h| *h != snapshot.header) {
            points.insert(index);
        }
        last_header = Some(&snapshot.header);
    }
    points.into_iter().collect()
}

#[test]
fn export_as_of_file_writes_the_master_and_metadata_saved_right_after_that_file() {
    let replay = replay();
    let points = export_points(replay);
    assert!(points.len() >= 7, "rejections and renames are in the data: {points:?}");
    let out = tempfile::tempdir().unwrap();
    for (n, &index) in points.iter().enumerate() {
        let name = &replay.snapshots[index].name;
        let (id, _) = replay.ledger_entry(name);
        // By name and by ledger id, alternately.
        let spec = if n % 2 == 0 { name.clone() } else { id.to_string() };
        let output = out.path().join(format!("after_{index}.csv"));
        ok(replay.cmd(&["export", "--as-of-file", &spec, "--output", output.to_str().unwrap()]));
        let got = fs::read(&output).unwrap();
        let want = replay.masters[index].as_ref().expect("a master CSV after an applied file");
        assert!(
            got == *want,
            "export --as-of-file {spec} ({name}) differs from the master saved then"
        );
        let got = fs::read(out.path().join(format!("after_{index}.csv.json"))).unwrap();
        let want = replay.metadata[index].as_ref().unwrap();
        assert!(
            got == *want,
            "metadata after {name}:\n{}\nsaved then:\n{}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want)
        );
    }
}

#[test]
fn export_as_of_a_time_between_two_runs_writes_the_earlier_master() {
    let replay = replay();
    let (_, finished) = replay.ledger_entry(&replay.snapshots[PAUSE_AFTER].name);
    let (_, next_finished) = replay.ledger_entry(&replay.snapshots[PAUSE_AFTER + 1].name);
    let finished = DateTime::parse_from_rfc3339(&finished).unwrap();
    let next_finished = DateTime::parse_from_rfc3339(&next_finished).unwrap();
    let out = tempfile::tempdir().unwrap();

    let midway = finished + TimeDelta::milliseconds(500);
    let local_next_second =
        (finished.with_timezone(&Local).trunc_subsecs(0) + TimeDelta::seconds(1)).naive_local();
    assert!(midway < next_finished);
    for time in [
        midway.to_rfc3339(),
        local_next_second.format("%Y-%m-%d %H:%M:%S").to_string(),
        finished.to_rfc3339(),
    ] {
        let output = out.path().join("between.csv");
        ok(replay.cmd(&["export", "--as-of", &time, "--output", output.to_str().unwrap()]));
        assert!(
            fs::read(&output).unwrap() == *replay.masters[PAUSE_AFTER].as_ref().unwrap(),
            "export --as-of {time:?} is not the master saved after file {PAUSE_AFTER}"
        );
    }

    // Before any file was applied (only the rejected first one): the header alone. The run
    // after that rejection wrote no master CSV at all, since there was no data yet.
    assert!(replay.snapshots[0].ragged);
    let (_, first) = replay.ledger_entry(&replay.snapshots[0].name);
    let output = out.path().join("before.csv");
    ok(replay.cmd(&["export", "--as-of", &first, "--output", output.to_str().unwrap()]));
    assert_eq!(fs::read_to_string(&output).unwrap(), format!("{SP500_KEY}\n"));
    assert_eq!(replay.masters[0].as_deref(), None);
}

#[test]
fn export_of_a_past_state_needs_output_and_an_applied_file() {
    let replay = replay();
    let master = replay.dir.join("final_clusters_data.csv");
    let before = fs::read(&master).unwrap();
    let applied = &replay.snapshots[PAUSE_AFTER].name;
    let run = replay.cmd(&["export", "--as-of-file", applied]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("--output"), "{run:?}");
    let run = replay.cmd(&["export", "--as-of", "2000-01-01"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(fs::read(&master).unwrap(), before, "the master CSV was written over");

    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("x.csv");
    let rejected = &replay.snapshots[0].name;
    let run =
        replay.cmd(&["export", "--as-of-file", rejected, "--output", output.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("rejected"), "{run:?}");
    assert!(!output.exists());
}

// ---------------------------------------------------------------------------------------------
// query

/// (sector or None, count) sorted as SQLite sorts them: NULL first, then by bytes.
fn expected_sector_counts(replay: &Replay) -> Vec<(Option<String>, i64)> {
    let mut counts: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for values in final_state(&replay.snapshots).values() {
        *counts.entry(values.get("GICS Sector").cloned()).or_default() += 1;
    }
    counts.into_iter().collect()
}

const SECTOR_QUERY: &str =
    r#"SELECT "GICS Sector" AS sector, count(*) AS n FROM records GROUP BY 1 ORDER BY 1"#;

#[test]
fn query_counts_rows_and_rows_per_sector_as_the_snapshots_say_in_csv() {
    let replay = replay();
    let state = final_state(&replay.snapshots);
    let out = ok(replay.cmd(&["query", "SELECT count(*) AS n FROM records"]));
    assert_eq!(out, format!("n\n{}\n", state.len()));
    let with_sector = state.values().filter(|v| v.contains_key("Sector")).count();
    let out =
        ok(replay.cmd(&["query", r#"SELECT count("Sector") FROM records"#, "--format", "csv"]));
    assert_eq!(out, format!("\"count(\"\"Sector\"\")\"\n{with_sector}\n"));

    let default = ok(replay.cmd(&["query", SECTOR_QUERY]));
    assert_eq!(default, ok(replay.cmd(&["query", SECTOR_QUERY, "--format", "csv"])));
    let (header, rows) = parse_csv(&default);
    assert_eq!(header, ["sector", "n"]);
    let want: Vec<Vec<String>> = expected_sector_counts(replay)
        .into_iter()
        .map(|(s, n)| vec![s.unwrap_or_default(), n.to_string()])
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn query_counts_per_sector_in_json_and_jsonl() {
    let replay = replay();
    let want: Vec<Value> = expected_sector_counts(replay)
        .into_iter()
        .map(|(s, n)| json!({"sector": s, "n": n}))
        .collect();
    let json = parse_json(&ok(replay.cmd(&["query", SECTOR_QUERY, "--format", "json"])));
    assert_eq!(json, Value::Array(want.clone()));
    let jsonl = ok(replay.cmd(&["query", SECTOR_QUERY, "--format", "jsonl"]));
    let lines: Vec<Value> = jsonl.lines().map(parse_json).collect();
    assert_eq!(lines, want);
    assert!(jsonl.ends_with('\n'));
}

#[test]
fn query_counts_per_sector_in_a_table_as_wide_as_columns_says() {
    let replay = replay();
    let run = run_binary(
        &replay.dir,
        &["query", SECTOR_QUERY, "--format", "table"],
        &[("COLUMNS", "200")],
    );
    let text = ok(run);
    let lines: Vec<&str> = text.lines().collect();
    let want = expected_sector_counts(replay);
    assert_eq!(lines.len(), want.len() + 3, "header, rule, rows, count:\n{text}");
    let widths: Vec<usize> = lines[1].split("  ").map(str::len).collect();
    assert_eq!(widths.len(), 2, "{text}");
    let longest = want.iter().map(|(s, _)| s.as_deref().unwrap_or("").len()).max().unwrap();
    assert_eq!(widths[0], longest.max("sector".len()), "nothing cut at 200 columns:\n{text}");
    assert!(lines.iter().all(|l| l.chars().count() <= 200));
    let cell = |line: &str| -> (String, String) {
        let padded = format!("{line:<width$}", width = widths[0] + 2);
        (padded[..widths[0]].trim_end().to_string(), padded[widths[0] + 2..].trim().to_string())
    };
    assert_eq!(cell(lines[0]), ("sector".to_string(), "n".to_string()));
    for (line, (sector, n)) in lines[2..].iter().zip(&want) {
        assert_eq!(cell(line), (sector.clone().unwrap_or_default(), n.to_string()));
    }
    assert_eq!(*lines.last().unwrap(), format!("({} rows)", want.len()));
}

/// A small store to try writes against: two files applied, one rejected.
fn small_store() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,region,nodes\nalpha,eu,3\nbeta,us,4\n");
    sb.run_expect(0);
    sb.drop_bytes("b.csv", b"cluster_name,region\nbeta,us\ngamma,ap,extra\n");
    sb.run_expect(2);
    sb.drop_bytes("c.csv", b"cluster_name,region,nodes\nbeta,us,5\ngamma,ap,1\n");
    sb.run_expect(0);
    sb
}

/// Everything a write could change: row counts of every table, meta, schema and user_version.
fn store_facts(sb: &Sandbox) -> Vec<String> {
    let db = sb.db();
    let mut facts = Vec::new();
    for table in ["record_data", "record_version", "ledger", "catalog", "run", "meta"] {
        let n: i64 =
            db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        facts.push(format!("{table}: {n}"));
    }
    let mut stmt = db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").unwrap();
    let schema = stmt.query_map([], |r| {
        Ok(format!(
            "{}|{}|{:?}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?
        ))
    });
    facts.extend(schema.unwrap().map(Result::unwrap));
    let mut stmt = db.prepare("SELECT name || '=' || value FROM meta ORDER BY name").unwrap();
    facts.extend(stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap));
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    facts.push(format!("user_version {version}"));
    facts
}

#[test]
fn query_refuses_every_write_statement_and_the_store_stays_byte_for_byte_the_same() {
    let sb = small_store();
    let facts = store_facts(&sb);
    let bytes = fs::read(sb.store_path()).unwrap();
    let new_db = sb.path("attached_new.db");
    let new_uri_db = sb.path("attached_uri.db");
    let copy = sb.path("copy.db");
    let vacuumed = sb.path("vacuumed.db");
    fs::copy(sb.store_path(), &copy).unwrap();
    let copy_bytes = fs::read(&copy).unwrap();

    let refused_as_read_only = [
        "DELETE FROM record_data".to_string(),
        "UPDATE record_data SET line = 0".into(),
        "INSERT INTO meta (name, value) VALUES ('x', 'y')".into(),
        "REPLACE INTO meta (name, value) VALUES ('key_column', 'other')".into(),
        "WITH k AS (SELECT 'alpha') DELETE FROM record_data WHERE key IN k".into(),
        "DROP TABLE ledger".into(),
        "DROP VIEW records".into(),
        "CREATE TABLE extra (x)".into(),
        "ALTER TABLE catalog ADD COLUMN extra".into(),
        "PRAGMA user_version = 9".into(),
        "PRAGMA main.user_version = 9".into(),
        "PRAGMA journal_mode = DELETE".into(),
        "VACUUM".into(),
        format!("VACUUM INTO '{}'", vacuumed.display()),
    ];
    for sql in &refused_as_read_only {
        let run = sb.cmd(&["query", sql]);
        assert_eq!(run.status, 1, "{sql}\n{run:?}");
        assert!(run.stderr.contains("read-only"), "{sql}\n{run:?}");
    }
    // ATTACH is allowed for reading; writing through it must still fail, creating nothing.
    let attach_and_write = [
        format!("ATTACH '{}' AS n; CREATE TABLE n.t (x)", new_db.display()),
        format!("ATTACH 'file:{}?mode=rwc' AS n", new_uri_db.display()),
        format!("ATTACH '{}' AS c; DELETE FROM c.record_data", copy.display()),
        "SELECT 1; DELETE FROM record_data".into(),
    ];
    for sql in &attach_and_write {
        let run = sb.cmd(&["query", sql]);
        assert_eq!(run.status, 1, "{sql}\n{run:?}");
        assert!(
            run.stderr.contains("read-only") || run.stderr.contains("SQL error"),
            "{sql}\n{run:?}"
        );
    }

    assert!(fs::read(sb.store_path()).unwrap() == bytes, "the store file's bytes changed");
    assert_eq!(store_facts(&sb), facts);
    assert!(fs::read(&copy).unwrap() == copy_bytes, "the attached copy changed");
    for path in [&new_db, &new_uri_db, &vacuumed] {
        assert!(!path.exists(), "{} was created", path.display());
    }
    assert_eq!(sb.value("beta", "nodes").as_deref(), Some("5"));
    assert_eq!(sb.row_count(), 3);
}

#[test]
fn query_syntax_errors_exit_1_name_the_problem_and_point_at_it() {
    let sb = small_store();
    for (sql, problem, at) in [
        ("SELEC key FROM records", "syntax error", Some("SELEC")),
        ("SELECT nodez FROM records", "no such column: nodez", Some("nodez")),
        ("SELECT * FROM recordz", "no such table: recordz", None),
        ("SELECT * FROM records WHERE", "incomplete input", None),
    ] {
        let run = sb.cmd(&["query", sql]);
        assert_eq!(run.status, 1, "{sql}\n{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(run.stderr.contains("SQL error:"), "{run:?}");
        assert!(run.stderr.contains(problem), "{run:?}");
        if let Some(word) = at {
            // The statement, then a caret under the word the error is about.
            let lines: Vec<&str> = run.stderr.lines().collect();
            let caret = lines.iter().position(|l| l.trim() == "^").expect("a caret line");
            assert_eq!(lines[caret - 1].trim(), sql, "{run:?}");
            let column = lines[caret].find('^').unwrap();
            assert_eq!(lines[caret - 1].find(word), Some(column), "{run:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// files

/// a.csv applied, b.csv rejected, a.csv again (a repeated delivery), c.csv applied; one run
/// each. c.csv inserts k4, updates k2 and re-sends k1 unchanged.
fn ledger_scenario() -> Sandbox {
    let mut sb = Sandbox::new();
    let a = b"cluster_name,region\nk1,eu\nk2,us\n";
    sb.drop_bytes("a.csv", a);
    sb.run_expect(0);
    sb.drop_bytes("b.csv", b"cluster_name,region\nk3,ap,extra\n");
    sb.run_expect(2);
    sb.drop_bytes("a.csv", a);
    sb.run_expect(0);
    sb.drop_bytes("c.csv", b"cluster_name,region\nk2,ap\nk4,sa\nk1,eu\n");
    sb.run_expect(0);
    sb
}

fn file_ids(sb: &Sandbox, args: &[&str]) -> Vec<(i64, String, String)> {
    let mut full = vec!["files", "--format", "json"];
    full.extend_from_slice(args);
    let doc = parse_json(&ok(sb.cmd(&full)));
    doc.as_array()
        .expect("an array")
        .iter()
        .map(|f| {
            (
                f["id"].as_i64().unwrap(),
                f["name"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn files_lists_the_ledger_newest_first_filtered_by_status_and_since() {
    let sb = ledger_scenario();
    let ids =
        |args: &[&str]| -> Vec<i64> { file_ids(&sb, args).into_iter().map(|f| f.0).collect() };
    assert_eq!(
        file_ids(&sb, &[]),
        vec![
            (4, "c.csv".into(), "applied".into()),
            (3, "a.csv".into(), "duplicate".into()),
            (2, "b.csv".into(), "rejected".into()),
            (1, "a.csv".into(), "applied".into()),
        ]
    );
    assert_eq!(ids(&["--status", "applied"]), [4, 1]);
    assert_eq!(ids(&["--status", "rejected"]), [2]);
    assert_eq!(ids(&["--status", "duplicate"]), [3]);

    let started: String =
        sb.db().query_row("SELECT started_at FROM ledger WHERE id = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(ids(&["--since", &started]), [4, 3, 2]);
    assert_eq!(ids(&["--since", &started, "--status", "applied"]), [4]);
    assert_eq!(ids(&["--since", "2000-01-01"]), [4, 3, 2, 1]);
    assert_eq!(ids(&["--since", "2999-01-01 00:00"]), Vec::<i64>::new());

    // The csv default carries the same rows.
    let (header, rows) = parse_csv(&ok(sb.cmd(&["files", "--status", "applied"])));
    let id_at = header.iter().position(|h| h == "id").unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r[id_at].as_str()).collect();
    assert_eq!(ids, ["4", "1"]);

    for bad in [&["files", "--since", "yesterday-ish"][..], &["files", "--status", "pending"]] {
        let run = sb.cmd(bad);
        assert_ne!(run.status, 0, "{run:?}");
    }
}

#[test]
fn files_show_gives_the_record_and_the_keys_inserted_and_updated() {
    let sb = ledger_scenario();
    let doc = parse_json(&ok(sb.cmd(&["files", "show", "c.csv", "--format", "json"])));
    assert_eq!(doc["id"], json!(4));
    assert_eq!(doc["status"], json!("applied"));
    assert_eq!(
        (&doc["rows_read"], &doc["rows_inserted"], &doc["rows_updated"], &doc["rows_unchanged"]),
        (&json!(3), &json!(1), &json!(1), &json!(1))
    );
    assert_eq!(doc["keys_inserted"], json!(["k4"]));
    assert_eq!(doc["keys_updated"], json!(["k2"]));

    let doc = parse_json(&ok(sb.cmd(&["files", "show", "1", "--format", "json"])));
    assert_eq!(doc["name"], json!("a.csv"));
    assert_eq!(doc["keys_inserted"], json!(["k1", "k2"]));
    assert_eq!(doc["keys_updated"], json!([]));

    let doc = parse_json(&ok(sb.cmd(&["files", "show", "b.csv", "--format", "json"])));
    assert_eq!(doc["status"], json!("rejected"));
    assert_eq!(doc["rule"], json!("ragged_row"));
    assert_eq!(doc["line"], json!(2));
    assert_eq!(doc["keys_inserted"], json!([]));

    // The default (csv, not a terminal) is field,value lines.
    let (header, rows) = parse_csv(&ok(sb.cmd(&["files", "show", "4"])));
    assert_eq!(header, ["field", "value"]);
    let field = |name: &str| rows.iter().find(|r| r[0] == name).map(|r| r[1].clone());
    assert_eq!(field("name").as_deref(), Some("c.csv"));
    assert_eq!(field("keys_inserted").as_deref(), Some("k4"));
    assert_eq!(field("keys_updated").as_deref(), Some("k2"));

    let run = sb.cmd(&["files", "show", "nope.csv"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("nope.csv"), "{run:?}");
}

#[test]
fn files_show_lists_a_key_repeated_in_one_new_file_only_as_inserted() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("f1.csv", b"cluster_name,cpu\nz,1\ny,2\nz,3\n");
    sb.run_expect(0);
    assert_eq!(sb.value("z", "cpu").as_deref(), Some("3"));
    let doc = parse_json(&ok(sb.cmd(&["files", "show", "f1.csv", "--format", "json"])));
    assert_eq!((&doc["rows_inserted"], &doc["rows_updated"]), (&json!(2), &json!(0)));
    // In arrival order: the repeated key took the place of its last row, as in the master CSV.
    assert_eq!(doc["keys_inserted"], json!(["y", "z"]));
    assert_eq!(doc["keys_updated"], json!([]), "{doc:#}");
}

// ---------------------------------------------------------------------------------------------
// status

fn status(sb: &Sandbox) -> Value {
    parse_json(&ok(sb.cmd(&["status", "--format", "json"])))
}

#[test]
fn status_counts_files_and_says_whether_the_exports_match_the_store() {
    let mut sb = ledger_scenario();
    let doc = status(&sb);
    assert_eq!(doc["rows"], json!(3));
    assert_eq!(doc["live_columns"], json!(2));
    assert_eq!(
        (&doc["files_applied"], &doc["files_rejected"], &doc["files_duplicate"]),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(doc["files_waiting_in_inbox"], json!(0));
    assert_eq!(doc["last_run"], json!(4));
    assert_eq!(doc["last_run_outcome"], json!("ok"));
    assert_eq!(doc["master_csv"], json!("matches the store"));
    assert_eq!(doc["metadata"], json!("matches the store"));
    let (_, rows) = parse_csv(&ok(sb.cmd(&["status"])));
    assert!(rows.contains(&vec!["master_csv".to_string(), "matches the store".to_string()]));

    // Supported files wait in the inbox; hidden, partial and other files are not counted.
    sb.drop_bytes("x.csv", b"cluster_name,region\nk9,eu\n");
    sb.drop_bytes("y.CSV", b"cluster_name,region\nk8,eu\n");
    for other in [".hidden.csv", "z.csv.part", "notes.txt"] {
        sb.drop_bytes(other, b"cluster_name,region\nk7,eu\n");
    }
    let doc = status(&sb);
    assert_eq!(doc["files_waiting_in_inbox"], json!(2));
    assert_eq!(doc["waiting"], json!("x.csv y.CSV"));

    // A master CSV edited by hand no longer matches; a missing one is missing.
    let mut text = sb.master_text();
    text.push_str("k0,hand\n");
    fs::write(sb.master(), text).unwrap();
    let doc = status(&sb);
    let master = doc["master_csv"].as_str().unwrap();
    assert!(!master.contains("matches"), "{doc:#}");
    fs::remove_file(sb.master()).unwrap();
    assert_eq!(status(&sb)["master_csv"], json!("missing"));

    // The next run applies the waiting files and writes the master again.
    sb.run_expect(0);
    let doc = status(&sb);
    assert_eq!(doc["files_waiting_in_inbox"], json!(0));
    assert_eq!(doc["files_applied"], json!(4));
    assert_eq!(doc["rows"], json!(5));
    assert_eq!(doc["master_csv"], json!("matches the store"));
    assert_eq!(doc["metadata"], json!("matches the store"));
}

// ---------------------------------------------------------------------------------------------
// history of a re-sent row

#[test]
fn history_counts_an_unchanged_resend_apart_from_the_versions() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("day1.csv", b"cluster_name,region,nodes\nk1,eu,3\nk2,us,4\n");
    sb.run_expect(0);
    // Same values, other column order, other file: not a new version.
    sb.drop_bytes("day2.csv", b"cluster_name,nodes,region\nk2,4,us\nk1,3,eu\n");
    sb.run_expect(0);
    sb.drop_bytes("day3.csv", b"cluster_name,region,nodes\nk1,eu,5\n");
    sb.run_expect(0);

    let doc = parse_json(&ok(sb.cmd(&["history", "k1", "--format", "json"])));
    let versions = doc["versions"].as_array().unwrap();
    let files: Vec<&str> = versions.iter().map(|v| v["file"].as_str().unwrap()).collect();
    assert_eq!(files, ["day3.csv", "day1.csv"], "{doc:#}");
    assert_eq!(versions[0]["version"], json!(2));
    assert_eq!(versions[0]["kind"], json!("update"));
    assert_eq!(versions[0]["changes"], json!([{"column": "nodes", "old": "3", "new": "5"}]));
    assert_eq!(versions[1]["kind"], json!("insert"));
    let resent = doc["resent_unchanged"].as_array().unwrap();
    assert_eq!(resent.len(), 1, "{doc:#}");
    assert_eq!(resent[0]["file"], json!("day2.csv"));
    assert_eq!(resent[0]["file_id"], json!(2));

    let (_, rows) = parse_csv(&ok(sb.cmd(&["history", "k1"])));
    assert!(rows.iter().all(|r| r[1] != "day2.csv"), "{rows:?}");
    assert_eq!(rows.len(), 3, "one change in version 2, two in version 1: {rows:?}");
    let table = ok(sb.cmd(&["history", "k1", "--format", "table"]));
    assert!(!table.contains("day2.csv"), "{table}");
    assert!(table.contains("re-sent unchanged by 1 later file"), "{table}");

    // The re-send takes no value over: each is still blamed on the file that set it.
    let (_, blame) = parse_csv(&ok(sb.cmd(&["history", "k1", "--blame"])));
    let blame: Vec<(&str, &str, &str)> =
        blame.iter().map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str())).collect();
    assert_eq!(blame, [("region", "eu", "day1.csv"), ("nodes", "5", "day3.csv")]);

    let doc = parse_json(&ok(sb.cmd(&["history", "k2", "--format", "json"])));
    assert_eq!(doc["versions"].as_array().unwrap().len(), 1);
    assert_eq!(doc["resent_unchanged"][0]["file"], json!("day2.csv"));
    let doc = parse_json(&ok(sb.cmd(&["files", "show", "day2.csv", "--format", "json"])));
    assert_eq!(doc["rows_unchanged"], json!(2));
    assert_eq!((&doc["keys_inserted"], &doc["keys_updated"]), (&json!([]), &json!([])));
}

// ---------------------------------------------------------------------------------------------
// Migration from schema version 1

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn user_version(sb: &Sandbox) -> i64 {
    sb.db().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

/// The rows of a schema-1 store as `query` shows them, by key.
fn records_by_query(sb: &Sandbox) -> Vec<Value> {
    let sql = "SELECT cluster_name, region, nodes, owner FROM records ORDER BY cluster_name";
    parse_json(&ok(sb.cmd(&["query", sql, "--format", "json"]))).as_array().unwrap().clone()
}

#[test]
fn a_schema_1_store_is_migrated_once_and_keeps_every_row_and_ledger_entry() {
    let mut sb = Sandbox::new();
    fs::copy(fixture("store_schema_v1.db"), sb.store_path()).unwrap();
    assert_eq!(user_version(&sb), 1);

    let doc = status(&sb);
    assert_eq!(user_version(&sb), 2);
    assert_eq!(doc["rows"], json!(3));
    assert_eq!(
        (&doc["files_applied"], &doc["files_rejected"], &doc["files_duplicate"]),
        (&json!(2), &json!(1), &json!(0))
    );
    let rows = records_by_query(&sb);
    assert_eq!(
        rows,
        vec![
            json!({"cluster_name": "alpha", "region": "eu", "nodes": "3", "owner": null}),
            json!({"cluster_name": "beta", "region": "us", "nodes": null, "owner": "ops"}),
            json!({"cluster_name": "gamma", "region": "ap", "nodes": null, "owner": "dev"}),
        ]
    );
    let ledger: Vec<(String, String)> =
        sb.ledger().into_iter().map(|(name, status, _, _)| (name, status)).collect();
    assert_eq!(
        ledger,
        [("a.csv", "applied"), ("b.csv", "applied"), ("c.csv", "rejected")]
            .map(|(n, s)| (n.to_string(), s.to_string()))
    );
    // Once: a second look adds no history rows.
    let versions = |sb: &Sandbox| -> i64 {
        sb.db().query_row("SELECT count(*) FROM record_version", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(versions(&sb), 3);
    ok(sb.cmd(&["status"]));
    assert_eq!(versions(&sb), 3);

    // Rows stored before the upgrade: one version each, from the file that last wrote them.
    let doc = parse_json(&ok(sb.cmd(&["history", "gamma", "--format", "json"])));
    assert_eq!(doc["versions"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(
        (&doc["versions"][0]["file"], &doc["versions"][0]["line"]),
        (&json!("b.csv"), &json!(3))
    );

    // A new run on the upgraded store: gamma re-sent unchanged, delta new, alpha loses nodes.
    sb.drop_bytes("d.csv", b"cluster_name,region,owner\ngamma,ap,dev\ndelta,sa,ops\nalpha,eu,\n");
    sb.run_expect(0);
    assert_eq!(user_version(&sb), 2);
    assert_eq!(sb.ledger().len(), 4);
    assert_eq!(sb.value("beta", "owner").as_deref(), Some("ops"));
    assert_eq!(sb.value("delta", "region").as_deref(), Some("sa"));
    // No row holds a value for nodes any more, so it is dropped.
    assert_eq!(sb.catalog(), ["cluster_name", "region", "owner"]);
    assert_eq!(
        sb.master_text(),
        "cluster_name,owner,region\nbeta,ops,us\ngamma,dev,ap\ndelta,ops,sa\nalpha,,eu\n"
    );

    let doc = parse_json(&ok(sb.cmd(&["history", "delta", "--format", "json"])));
    assert_eq!(doc["versions"].as_array().unwrap().len(), 1, "{doc:#}");
    let v = &doc["versions"][0];
    assert_eq!(
        (&v["file"], &v["file_id"], &v["line"], &v["kind"]),
        (&json!("d.csv"), &json!(4), &json!(3), &json!("insert"))
    );
    let (_, blame) = parse_csv(&ok(sb.cmd(&["history", "delta", "--blame"])));
    let blame: BTreeSet<(String, String, String, String)> = blame
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[4].clone()))
        .collect();
    assert_eq!(
        blame,
        BTreeSet::from([
            ("owner".into(), "ops".into(), "d.csv".into(), "3".into()),
            ("region".into(), "sa".into(), "d.csv".into(), "3".into()),
        ])
    );

    let doc = parse_json(&ok(sb.cmd(&["history", "alpha", "--format", "json"])));
    let files: Vec<&str> =
        doc["versions"].as_array().unwrap().iter().map(|v| v["file"].as_str().unwrap()).collect();
    assert_eq!(files, ["d.csv", "a.csv"]);
    assert_eq!(
        doc["versions"][0]["changes"],
        json!([{"column": "nodes", "old": "3", "new": null}])
    );
    let (_, blame) = parse_csv(&ok(sb.cmd(&["history", "alpha", "--blame"])));
    assert_eq!(blame.len(), 1);
    assert_eq!(
        (&blame[0][0], &blame[0][1], &blame[0][2]),
        (&"region".to_string(), &"eu".to_string(), &"a.csv".to_string())
    );

    let doc = parse_json(&ok(sb.cmd(&["history", "gamma", "--format", "json"])));
    assert_eq!(doc["versions"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(doc["resent_unchanged"][0]["file"], json!("d.csv"));

    // The state after the first file applied since the upgrade can be rebuilt; earlier ones,
    // whose history was never recorded, are refused rather than guessed.
    let out = sb.path("after_d.csv");
    ok(sb.cmd(&["export", "--as-of-file", "d.csv", "--output", out.to_str().unwrap()]));
    assert_eq!(fs::read_to_string(&out).unwrap(), sb.master_text());
    let early = sb.path("after_a.csv");
    let run = sb.cmd(&["export", "--as-of-file", "a.csv", "--output", early.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(!early.exists());
}
