//! Crash safety: a run killed at any instant, followed by ordinary runs, must leave exactly what
//! an uninterrupted run leaves: the same store, ledger, master CSV and metadata, every delivered
//! file in the archive or the rejected folder (never both, never neither), no file applied twice,
//! no temporary file left behind, an empty inbox.
//!
//! The replay is two batches of small generated files (updates, new and dropped columns, quoted
//! fields, CRLF, repeated keys, bad files, a repeated delivery, a changed re-delivery, one content
//! under two names). Kills come from the binary's fault injection (`CSV_WATCHDOG_FAULT=<point>:<n>`
//! aborts the process the n-th time it reaches the point) and from real SIGKILLs sent after a
//! random short delay.
//!
//! The default run enumerates every fault point and every n at which it fires in either batch
//! (about 230 kills), then 24 SIGKILLs, in a few worker threads; about 20 s in a debug build.
//! Environment variables:
//! - `CRASH_KILL_POINTS=2000`: a longer soak; after the enumeration, random SIGKILLs (one to
//!   three in a row, the runs that recover killed as well) until that many kills have fired.
//! - `CRASH_SEED=<u64>`: the seed of the random delays (printed on failure), to replay a failure.
//! - `CRASH_JOBS=<n>`: worker threads (default 3).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{BIN, Sandbox, xxh128_hex};
use rusqlite::Connection;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The replay.

/// A file put into the inbox.
struct Delivery {
    name: &'static str,
    bytes: Vec<u8>,
}

fn delivery(name: &'static str, text: impl AsRef<[u8]>) -> Delivery {
    Delivery { name, bytes: text.as_ref().to_vec() }
}

fn rows(header: &str, range: std::ops::Range<usize>, row: impl Fn(usize) -> String) -> String {
    let mut text = format!("{header}\n");
    for i in range {
        text.push_str(&row(i));
        text.push('\n');
    }
    text
}

fn owner_file() -> String {
    rows("cluster_name,region,cpu,mem,owner", 5..10, |i| {
        format!("c{i:02},eu-{},{i},{},team-{}", i % 3, i * 8, i % 2)
    })
}

/// The batches: each is dropped into the inbox, then run (the second needs the first gone from
/// the inbox, as it delivers one of its names again).
fn batches() -> &'static [Vec<Delivery>; 2] {
    static BATCHES: OnceLock<[Vec<Delivery>; 2]> = OnceLock::new();
    BATCHES.get_or_init(|| {
        let base = "cluster_name,region,cpu,mem";
        let first = vec![
            delivery(
                "01_base.csv",
                rows(base, 0..20, |i| format!("c{i:02},eu-{},{i},{}", i % 3, i * 8)),
            ),
            delivery(
                "02_update.csv",
                rows(base, 0..6, |i| {
                    let cpu = if i < 5 { i + 100 } else { i };
                    format!("c{i:02},eu-{},{cpu},{}", i % 3, i * 8)
                }) + &rows("", 20..30, |i| format!("c{i:02},us-1,{i},{}", i * 4))[1..],
            ),
            delivery("03_owner.csv", owner_file()),
            delivery(
                "04_no_region.csv",
                rows("cluster_name,cpu,mem", 10..15, |i| format!("c{i:02},{},{i}", i * 2)),
            ),
            delivery(
                "05_quoted_crlf.csv",
                "cluster_name,region,notes\r\nc15,eu-0,\"a, b\"\r\nc16,eu-1,\"say \"\"hi\"\"\"\r\n\
                 c17,eu-2,\"two\r\nlines\"\r\n",
            ),
            delivery("06_ragged.csv", "cluster_name,cpu\nc30,1\nc31,2\nc32,3,extra\nc33,4\n"),
            delivery("07_repeated_key.csv", "cluster_name,cpu,mem\nc18,7,70\nc19,8,80\nc18,9,90\n"),
            delivery("08_tmp_column.csv", "cluster_name,tmp,cpu\nc00,x,9\n"),
            delivery("09_tmp_gone.csv", "cluster_name,cpu\nc00,10\n"),
            delivery("10_case.csv", " Cluster_Name ,CPU,Mem\nc01,1,1\nc02,2,2\nc03,3,3\n"),
            delivery("11_empty_key.csv", "cluster_name,cpu\nc40,1\n,2\n"),
            delivery("12_header_only.csv", "cluster_name,cpu\n"),
        ];
        let second = vec![
            // The same name and bytes again: a repeated delivery, recorded as a duplicate.
            delivery("01_base.csv", first[0].bytes.clone()),
            // The same name with new bytes: applied.
            delivery("02_update.csv", "cluster_name,region,cpu,mem\nc00,eu-9,1,1\nc01,eu-9,2,2\n"),
            delivery(
                "13_zone.csv",
                rows("cluster_name,zone,cpu", 50..65, |i| format!("c{i:02},z{},{i}", i % 4)),
            ),
            delivery("14_latin1.csv", b"cluster_name,city\nc60,M\xfcnchen\n"),
            // The bytes of 03_owner.csv under another name: applied, every row unchanged.
            delivery("15_owner_copy.csv", owner_file()),
            // Leaves no value in owner: the column is dropped.
            delivery(
                "16_owner_gone.csv",
                rows("cluster_name,cpu", 5..10, |i| format!("c{i:02},1")),
            ),
        ];
        [first, second]
    })
}

fn sandbox() -> Sandbox {
    Sandbox::new()
}

fn drop_batch(sb: &mut Sandbox, batch: usize) {
    for d in &batches()[batch] {
        sb.drop_bytes(d.name, &d.bytes);
    }
}

fn command(sb: &Sandbox, fault: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(sb.path("config.json"))
        .arg("run")
        .env_remove("RUST_LOG")
        .env_remove("CSV_MONITOR_CONFIG")
        .env_remove("CSV_WATCHDOG_FAULT");
    if let Some(fault) = fault {
        cmd.env("CSV_WATCHDOG_FAULT", fault);
    }
    cmd
}

fn run_with(sb: &Sandbox, fault: Option<&str>) -> Output {
    command(sb, fault).output().expect("run csv-watchdog")
}

fn text(out: &Output) -> String {
    format!(
        "{:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether the process was ended by the fault injection (abort, SIGABRT).
fn aborted(status: ExitStatus) -> bool {
    status.signal() == Some(6)
}

// ---------------------------------------------------------------------------------------------
// What must come out the same.

/// Everything compared with the uninterrupted replay.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    master: String,
    /// The metadata JSON without `last_updated` (a time).
    metadata: Value,
    /// `SELECT * FROM records`: column names, then the rows in key order.
    records: (Vec<String>, Vec<Vec<Option<String>>>),
    /// `record_data` with its bookkeeping: seq, key, file_id, line.
    record_data: Vec<(i64, String, i64, i64)>,
    /// (name, folded, position, is_key, added_by, dropped_by).
    catalog: Vec<CatalogRow>,
    /// (name, checksum, status, counts, rule, line, moved) per ledger row, in order.
    ledger: Vec<LedgerRow>,
    /// The `meta` table: key column, data and export generations, export checksum.
    meta: BTreeMap<String, String>,
}

type CatalogRow = (String, String, i64, bool, Option<i64>, Option<i64>);
type LedgerRow = (String, String, String, [i64; 7], Option<String>, Option<i64>, bool);

fn query<T>(
    db: &Connection,
    sql: &str,
    row: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Vec<T> {
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    stmt.query_map([], |r| row(r)).unwrap().map(Result::unwrap).collect()
}

fn outcome(sb: &Sandbox) -> Result<Outcome, String> {
    let master = fs::read_to_string(sb.master()).map_err(|e| format!("master CSV: {e}"))?;
    let metadata = fs::read(sb.metadata()).map_err(|e| format!("metadata: {e}"))?;
    let mut metadata: Value = serde_json::from_slice(&metadata).map_err(|e| e.to_string())?;
    metadata.as_object_mut().and_then(|m| m.remove("last_updated"));

    let db = sb.db();
    let mut stmt = db.prepare("SELECT * FROM records").unwrap();
    let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
    let width = names.len();
    let mut record_rows: Vec<Vec<Option<String>>> = stmt
        .query_map([], |r| (0..width).map(|i| r.get(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    record_rows.sort();
    drop(stmt);

    Ok(Outcome {
        master,
        metadata,
        records: (names, record_rows),
        record_data: query(
            &db,
            "SELECT seq, key, file_id, line FROM record_data ORDER BY seq",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        ),
        catalog: query(
            &db,
            "SELECT name, folded, position, is_key, added_by, dropped_by FROM catalog ORDER BY id",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        ),
        ledger: query(
            &db,
            "SELECT name, checksum, status, rows_read, rows_inserted, rows_updated, rows_unchanged,
                    duplicate_keys, columns_added, columns_dropped, rule, line, moved_at IS NOT NULL
             FROM ledger ORDER BY id",
            |r| {
                let mut counts = [0; 7];
                for (i, c) in counts.iter_mut().enumerate() {
                    *c = r.get(3 + i)?;
                }
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, counts, r.get(10)?, r.get(11)?, r.get(12)?))
            },
        ),
        meta: query(&db, "SELECT name, value FROM meta", |r| Ok((r.get(0)?, r.get(1)?)))
            .into_iter()
            .collect(),
    })
}

/// Names of the fields of `Outcome` that differ, with both values.
fn differences(want: &Outcome, got: &Outcome) -> String {
    let mut out = String::new();
    macro_rules! field {
        ($f:ident) => {
            if want.$f != got.$f {
                out.push_str(&format!(
                    "\n  {}:\n    want {:?}\n    got  {:?}",
                    stringify!($f),
                    want.$f,
                    got.$f
                ));
            }
        };
    }
    field!(master);
    field!(metadata);
    field!(records);
    field!(record_data);
    field!(catalog);
    field!(ledger);
    field!(meta);
    out
}

/// The uninterrupted replay: one run per batch.
struct Reference {
    outcome: Outcome,
    statuses: [i32; 2],
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let mut sb = sandbox();
        let statuses = [0, 1].map(|batch| {
            drop_batch(&mut sb, batch);
            run_with(&sb, None).status.code().unwrap_or(-1)
        });
        let outcome = outcome(&sb).expect("the reference replay exports");
        Reference { outcome, statuses }
    })
}

#[test]
fn the_uninterrupted_replay_does_what_the_files_ask() {
    let r = reference();
    // Both batches hold bad files.
    assert_eq!(r.statuses, [2, 2]);
    let statuses: Vec<(&str, &str)> =
        r.outcome.ledger.iter().map(|l| (l.0.as_str(), l.2.as_str())).collect();
    assert_eq!(
        statuses,
        [
            ("01_base.csv", "applied"),
            ("02_update.csv", "applied"),
            ("03_owner.csv", "applied"),
            ("04_no_region.csv", "applied"),
            ("05_quoted_crlf.csv", "applied"),
            ("06_ragged.csv", "rejected"),
            ("07_repeated_key.csv", "applied"),
            ("08_tmp_column.csv", "applied"),
            ("09_tmp_gone.csv", "applied"),
            ("10_case.csv", "applied"),
            ("11_empty_key.csv", "rejected"),
            ("12_header_only.csv", "rejected"),
            ("01_base.csv", "duplicate"),
            ("02_update.csv", "applied"),
            ("13_zone.csv", "applied"),
            ("14_latin1.csv", "rejected"),
            ("15_owner_copy.csv", "applied"),
            ("16_owner_gone.csv", "applied"),
        ]
    );
    let copy = r.outcome.ledger.iter().find(|l| l.0 == "15_owner_copy.csv").unwrap();
    assert_eq!(copy.3[..4], [5, 0, 0, 5], "rows read, inserted, updated, unchanged");
    // tmp came and went; owner went in the second batch; notes and zone stay.
    let (columns, _) = &r.outcome.records;
    assert_eq!(columns, &["cluster_name", "region", "cpu", "mem", "notes", "zone"]);
    assert!(r.outcome.master.contains("c17,,,\"two\r\nlines\",eu-2,\n"), "{}", r.outcome.master);
    assert!(r.outcome.master.starts_with("cluster_name,cpu,mem,notes,region,zone\n"));
}

// ---------------------------------------------------------------------------------------------
// Checks after a crash and the runs that follow it.

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// XXH3 of every file in `dir` except reason JSONs and temporary files, with a count per
/// checksum.
fn checksums_in(dir: &Path) -> BTreeMap<String, usize> {
    let mut sums = BTreeMap::new();
    for entry in fs::read_dir(dir).into_iter().flatten() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.ends_with(".json") && !name.starts_with('.') {
            *sums.entry(xxh128_hex(&fs::read(&path).unwrap())).or_insert(0) += 1;
        }
    }
    sums
}

/// Everything that must hold once the inbox is drained after a crash.
fn check_recovered(sb: &Sandbox) -> Result<(), String> {
    let inbox = sb.names_in(&sb.inbox());
    ensure!(inbox.is_empty(), "inbox not empty: {inbox:?}");

    for dir in [sb.dir.path().to_path_buf(), sb.archive(), sb.rejected()] {
        let strays: Vec<String> =
            sb.names_in(&dir).into_iter().filter(|n| n.starts_with('.')).collect();
        ensure!(strays.is_empty(), "temporary files left in {}: {strays:?}", dir.display());
    }

    // Every delivered file is in the archive or the rejected folder, exactly once.
    let mut delivered = BTreeMap::new();
    for d in batches().iter().flatten() {
        *delivered.entry(xxh128_hex(&d.bytes)).or_insert(0) += 1;
    }
    let mut kept = checksums_in(&sb.archive());
    for (sum, n) in checksums_in(&sb.rejected()) {
        *kept.entry(sum).or_insert(0) += n;
    }
    ensure!(kept == delivered, "archived + rejected files {kept:?}\n  delivered {delivered:?}");

    // Each rejected file has its reason next to it.
    for name in sb.names_in(&sb.rejected()).iter().filter(|n| !n.ends_with(".json")) {
        let reason = sb.rejected().join(format!("{name}.json"));
        ensure!(reason.exists(), "no reason JSON for rejected {name}");
    }

    let got = outcome(sb)?;
    // No file applied twice: one applied ledger row per (name, checksum).
    let mut applied = BTreeMap::new();
    for row in got.ledger.iter().filter(|l| l.2 == "applied") {
        *applied.entry((row.0.clone(), row.1.clone())).or_insert(0) += 1;
    }
    ensure!(applied.values().all(|&n| n == 1), "a file applied twice: {applied:?}");

    let want = &reference().outcome;
    ensure!(&got == want, "differs from the uninterrupted replay:{}", differences(want, &got));
    Ok(())
}

/// Runs without a fault until the inbox is empty (at most three runs).
fn drain(sb: &Sandbox) -> Result<Vec<Output>, String> {
    let mut outs = Vec::new();
    for _ in 0..3 {
        let out = run_with(sb, None);
        let code = out.status.code();
        ensure!(matches!(code, Some(0 | 2)), "a run after the crash failed: {}", text(&out));
        outs.push(out);
        if sb.names_in(&sb.inbox()).is_empty() {
            return Ok(outs);
        }
    }
    Err(format!("the inbox is not empty after three runs: {:?}", sb.names_in(&sb.inbox())))
}

// ---------------------------------------------------------------------------------------------
// Kill points.

const POINTS: &[&str] = &[
    "file-start",
    "row",
    "before-commit",
    "after-commit",
    "after-move",
    "export-row",
    "export-before-rename",
    "export-between",
    "after-export",
];

/// How one scenario kills: a fault point armed in the first run of a batch, or SIGKILLs after
/// the given delays, one per run, starting with the first run of a batch.
#[derive(Debug, Clone)]
enum Kill {
    Fault { batch: usize, point: &'static str, nth: u64 },
    Signal { batch: usize, delays: Vec<Duration> },
}

/// What one scenario did.
struct Done {
    /// Kills that really happened (a fault point reached fewer than n times, or a process that
    /// finished before its SIGKILL, is no kill).
    fired: usize,
}

/// Replays both batches with `kill` applied, draining the inbox after it.
fn replay_with(kill: &Kill) -> Result<Done, String> {
    let mut sb = sandbox();
    let mut fired = 0;
    for batch in 0..2 {
        drop_batch(&mut sb, batch);
        match kill {
            Kill::Fault { batch: b, point, nth } if *b == batch => {
                let out = run_with(&sb, Some(&format!("{point}:{nth}")));
                if aborted(out.status) {
                    fired += 1;
                } else {
                    ensure!(
                        out.status.code() == Some(reference().statuses[batch]),
                        "an unfired fault changed the run: {}",
                        text(&out)
                    );
                }
            }
            Kill::Signal { batch: b, delays } if *b == batch => {
                for delay in delays {
                    fired += usize::from(sigkill_after(&sb, *delay));
                }
            }
            _ => {}
        }
        drain(&sb)?;
    }
    check_recovered(&sb)?;
    Ok(Done { fired })
}

/// Starts a run and SIGKILLs it after `delay`; says whether it was still running.
fn sigkill_after(sb: &Sandbox, delay: Duration) -> bool {
    let mut child: Child = command(sb, None)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start csv-watchdog");
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok();
    child.wait().unwrap();
    running
}

/// A small, seedable generator for the SIGKILL delays (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a number")))
}

/// Random SIGKILL scenarios: one to three killed runs in a row, in a random batch, each after a
/// delay up to a little more than that batch's uninterrupted run took.
fn signal_kills(rng: &mut Rng, count: usize, spans: [Duration; 2]) -> Vec<Kill> {
    (0..count)
        .map(|_| {
            let batch = rng.below(2) as usize;
            let span = spans[batch].as_micros() as u64 * 5 / 4 + 1000;
            let kills = 1 + rng.below(3) as usize;
            let delays = (0..kills).map(|_| Duration::from_micros(rng.below(span))).collect();
            Kill::Signal { batch, delays }
        })
        .collect()
}

/// How long each batch's run takes under the load of `jobs` replays side by side (the median),
/// to aim the SIGKILLs at the runs.
fn run_times(jobs: usize) -> [Duration; 2] {
    let times = Mutex::new([Vec::new(), Vec::new()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut sb = sandbox();
                for batch in 0..2 {
                    drop_batch(&mut sb, batch);
                    let started = Instant::now();
                    run_with(&sb, None);
                    times.lock().unwrap()[batch].push(started.elapsed());
                }
            });
        }
    });
    times.into_inner().unwrap().map(|mut t| {
        t.sort();
        t[t.len() / 2]
    })
}

#[derive(Default)]
struct Tally {
    scenarios: AtomicUsize,
    fired: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, kill: &Kill, result: Result<Done, String>) -> usize {
        self.scenarios.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(done) => {
                self.fired.fetch_add(done.fired, Ordering::Relaxed);
                done.fired
            }
            Err(e) => {
                self.failures.lock().unwrap().push(format!("{kill:?}: {e}"));
                0
            }
        }
    }
}

#[test]
fn every_kill_point_recovers_to_the_uninterrupted_result() {
    let started = Instant::now();
    let target = env_number("CRASH_KILL_POINTS");
    let seed = env_number("CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64
            | 1
    });
    let jobs = env_number("CRASH_JOBS").unwrap_or(3).max(1) as usize;
    reference();
    let tally = Tally::default();

    // Each (batch, point) is a sequence n = 1, 2, 3… that ends at the first n the point is not
    // reached: that scenario is an uninterrupted run with the fault armed.
    let sequences: Vec<(usize, &str)> =
        (0..2).flat_map(|b| POINTS.iter().map(move |&p| (b, p))).collect();
    let reached = Mutex::new(BTreeMap::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                while let Some(&(batch, point)) =
                    sequences.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    for nth in 1.. {
                        let kill = Kill::Fault { batch, point, nth };
                        if tally.record(&kill, replay_with(&kill)) == 0 {
                            reached.lock().unwrap().insert((batch, point), nth - 1);
                            break;
                        }
                    }
                }
            });
        }
    });
    let enumerated = tally.fired.load(Ordering::Relaxed);

    // Then real SIGKILLs: a few by default, up to the requested total in the long mode.
    let mut rng = Rng(seed | 1);
    let wanted = target.map_or(24, |t| (t as usize).saturating_sub(enumerated));
    let spans = run_times(jobs);
    for _round in 0..if target.is_some() { usize::MAX } else { 4 } {
        let missing = wanted.saturating_sub(tally.fired.load(Ordering::Relaxed) - enumerated);
        if missing == 0 {
            break;
        }
        let kills = signal_kills(&mut rng, missing.div_ceil(2).max(jobs), spans);
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    while let Some(kill) = kills.get(next.fetch_add(1, Ordering::Relaxed)) {
                        tally.record(kill, replay_with(kill));
                    }
                });
            }
        });
        if !tally.failures.lock().unwrap().is_empty() {
            break;
        }
    }

    let fired = tally.fired.load(Ordering::Relaxed);
    let failures = tally.failures.into_inner().unwrap();
    eprintln!(
        "crash: {} scenarios, {fired} kills ({enumerated} at fault points), seed {seed}, {:.1} s",
        tally.scenarios.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        failures.is_empty(),
        "{} of the scenarios failed (CRASH_SEED={seed}); the first ones:\n{}",
        failures.len(),
        failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n\n")
    );
    assert!(enumerated >= 200, "only {enumerated} fault points fired; the fixture shrank?");
    // Every point is reached in both batches (the second batch exports, rejects and skips too).
    let reached = reached.into_inner().unwrap();
    eprintln!("crash: times each point was reached per batch: {reached:?}");
    assert!(reached.values().all(|&n| n > 0), "a fault point was never reached: {reached:?}");
}

// ---------------------------------------------------------------------------------------------
// Named kill points.

fn ledger_moved(sb: &Sandbox) -> Vec<(String, String, bool)> {
    query(&sb.db(), "SELECT name, status, moved_at IS NOT NULL FROM ledger ORDER BY id", |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dot_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn kill_between_commit_and_archive_applies_once_and_archives_on_the_next_run() {
    let mut sb = sandbox();
    let bytes = b"cluster_name,cpu\nc1,1\nc2,2\nc3,3\n";
    sb.drop_bytes("a.csv", bytes);
    let out = run_with(&sb, Some("after-commit"));
    assert!(aborted(out.status), "{}", text(&out));

    // Committed, not yet moved: the ledger knows, the file is still in the inbox.
    assert_eq!(ledger_moved(&sb), [("a.csv".into(), "applied".into(), false)]);
    assert_eq!(sb.row_count(), 3);
    assert_eq!(sb.names_in(&sb.inbox()), ["a.csv"]);
    assert!(sb.names_in(&sb.archive()).is_empty());

    let out = run_with(&sb, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = stdout(&out);
    assert!(said.contains("recovered a.csv"), "the run should say it recovered:\n{said}");
    assert!(said.contains("0 applied"), "a.csv must not be applied again:\n{said}");
    let log = fs::read_to_string(sb.path("csv_watchdog.log")).unwrap();
    assert!(log.contains("recovered an interrupted run"), "{log}");

    assert!(sb.names_in(&sb.inbox()).is_empty());
    let archived = sb.names_in(&sb.archive());
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert_eq!(fs::read(sb.archive().join(&archived[0])).unwrap(), bytes);
    assert_eq!(ledger_moved(&sb), [("a.csv".into(), "applied".into(), true)]);
    assert_eq!(sb.row_count(), 3);
    assert_eq!(sb.master_text(), "cluster_name,cpu\nc1,1\nc2,2\nc3,3\n");

    // Delivered once more, it is known as applied.
    sb.drop_bytes("a.csv", bytes);
    let out = run_with(&sb, None);
    assert!(stdout(&out).contains("duplicate a.csv"), "{}", text(&out));
    assert_eq!(ledger_moved(&sb).len(), 2);
    assert_eq!(ledger_moved(&sb)[1].1, "duplicate");
}

#[test]
fn kill_between_moving_a_rejected_file_and_confirming_it_writes_the_reason_on_the_next_run() {
    let mut sb = sandbox();
    sb.drop_bytes("bad.csv", b"cluster_name,cpu\nc1,1\nc2,2,3\n");
    let out = run_with(&sb, Some("after-move"));
    assert!(aborted(out.status), "{}", text(&out));
    assert_eq!(ledger_moved(&sb), [("bad.csv".into(), "rejected".into(), false)]);
    let rejected = sb.names_in(&sb.rejected());
    assert_eq!(rejected.len(), 1, "moved, reason not yet written: {rejected:?}");

    let out = run_with(&sb, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("recovered bad.csv"), "{}", text(&out));
    assert_eq!(ledger_moved(&sb), [("bad.csv".into(), "rejected".into(), true)]);
    let reason = sb.rejected().join(format!("{}.json", rejected[0]));
    let reason: Value = serde_json::from_slice(&fs::read(reason).unwrap()).unwrap();
    assert_eq!(reason["rule"], "ragged_row");
    assert_eq!(reason["line"], 3);
    assert_eq!(reason["file"], "bad.csv");
}

const OLD_MASTER: &str = "cluster_name,cpu\nc1,1\nc2,2\n";
const NEW_MASTER: &str = "cluster_name,cpu,mem\nc1,1,\nc2,5,50\nc3,6,60\n";

#[test]
fn kill_during_export_keeps_the_old_master_until_the_rename() {
    // (fault, whether the master CSV was already replaced, the temporary file left behind)
    let cases = [
        ("export-row:1", false, Some(".final_clusters_data.csv.tmp-")),
        ("export-row:3", false, Some(".final_clusters_data.csv.tmp-")),
        ("export-before-rename:1", false, Some(".final_clusters_data.csv.tmp-")),
        ("export-between:1", true, None),
        ("export-before-rename:2", true, Some(".final_clusters_metadata.json.tmp-")),
        ("after-export:1", true, None),
    ];
    for (fault, replaced, temp) in cases {
        let mut sb = sandbox();
        sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\nc2,2\n");
        run_with(&sb, None);
        assert_eq!(sb.master_text(), OLD_MASTER);
        let old_metadata = fs::read(sb.metadata()).unwrap();

        sb.drop_bytes("b.csv", b"cluster_name,cpu,mem\nc2,5,50\nc3,6,60\n");
        let out = run_with(&sb, Some(fault));
        assert!(aborted(out.status), "{fault}: {}", text(&out));
        let expected_master = if replaced { NEW_MASTER } else { OLD_MASTER };
        assert_eq!(sb.master_text(), expected_master, "{fault}: master CSV after the kill");
        if fault != "after-export:1" {
            assert_eq!(fs::read(sb.metadata()).unwrap(), old_metadata, "{fault}: metadata");
        }
        let strays = dot_files(sb.dir.path());
        match temp {
            Some(prefix) => assert!(
                strays.len() == 1 && strays[0].starts_with(prefix),
                "{fault}: expected one {prefix}* file, found {strays:?}"
            ),
            None => assert!(strays.is_empty(), "{fault}: {strays:?}"),
        }

        // The next run removes the temporary file and writes both outputs again.
        let out = run_with(&sb, None);
        assert_eq!(out.status.code(), Some(0), "{fault}: {}", text(&out));
        assert!(
            stdout(&out).contains("wrote"),
            "{fault}: the next run must export: {}",
            text(&out)
        );
        assert_eq!(dot_files(sb.dir.path()), Vec::<String>::new(), "{fault}");
        assert_eq!(sb.master_text(), NEW_MASTER, "{fault}");
        let metadata: Value = serde_json::from_slice(&fs::read(sb.metadata()).unwrap()).unwrap();
        assert_eq!(metadata["merged_file_xxh3_128"], xxh128_hex(NEW_MASTER.as_bytes()), "{fault}");
        assert_eq!(metadata["row_count"], 3, "{fault}");
        assert_eq!(metadata["files_applied"], 2, "{fault}");
        assert_eq!(metadata["columns"], serde_json::json!(["cluster_name", "cpu", "mem"]));
    }
}

#[test]
fn kill_mid_transaction_stores_nothing_of_the_file() {
    let b = b"cluster_name,cpu,mem\nc2,5,50\nc3,6,60\nc4,7,70\nc1,8,80\n";
    for fault in ["file-start:1", "row:1", "row:3", "row:4", "before-commit:1"] {
        let mut sb = sandbox();
        sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\nc2,2\n");
        run_with(&sb, None);
        let before = outcome(&sb).unwrap();

        sb.drop_bytes("b.csv", b);
        let out = run_with(&sb, Some(fault));
        assert!(aborted(out.status), "{fault}: {}", text(&out));
        let after = outcome(&sb).unwrap();
        assert!(after == before, "{fault}: the store changed:{}", differences(&before, &after));
        assert_eq!(sb.names_in(&sb.inbox()), ["b.csv"], "{fault}");
        assert_eq!(fs::read(sb.inbox().join("b.csv")).unwrap(), b, "{fault}");
        assert_eq!(sb.names_in(&sb.archive()).len(), 1, "{fault}");

        let out = run_with(&sb, None);
        assert_eq!(out.status.code(), Some(0), "{fault}: {}", text(&out));
        assert!(
            stdout(&out).contains("applied   b.csv: 4 rows read, 2 inserted, 2 updated"),
            "{}",
            text(&out)
        );
        assert_eq!(
            ledger_moved(&sb),
            [("a.csv".into(), "applied".into(), true), ("b.csv".into(), "applied".into(), true)],
            "{fault}"
        );
        assert_eq!(sb.master_text(), "cluster_name,cpu,mem\nc2,5,50\nc3,6,60\nc4,7,70\nc1,8,80\n");
        assert!(sb.names_in(&sb.inbox()).is_empty());
    }
}

/// A rejected file is moved, its reason JSON written (through a `.csv-watchdog-*` temporary
/// file), and only then the move confirmed in the ledger. A run SIGKILLed as soon as that
/// temporary file appears must be finished by the next run: the reason written, the temporary
/// file removed.
#[test]
fn a_kill_while_the_reason_is_written_is_finished_by_the_next_run() {
    for attempt in 0..50 {
        let mut sb = sandbox();
        sb.drop_bytes("bad.csv", b"cluster_name,cpu\nc1,1\nc2,2,3\n");
        let mut child =
            command(&sb, None).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let hit = loop {
            if dot_files(&sb.rejected()).iter().any(|n| n.starts_with(".csv-watchdog-")) {
                child.kill().unwrap();
                child.wait().unwrap();
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
        };
        let rejected = sb.names_in(&sb.rejected());
        if !hit || rejected.iter().any(|n| n.ends_with(".json")) {
            eprintln!("attempt {attempt}: the kill missed the window");
            continue;
        }

        let out = run_with(&sb, None);
        assert!(matches!(out.status.code(), Some(0 | 2)), "{}", text(&out));
        let names = sb.names_in(&sb.rejected());
        let file =
            names.iter().find(|n| n.starts_with("bad.csv.") && !n.ends_with(".json")).unwrap();
        assert!(
            names.contains(&format!("{file}.json")),
            "after a kill and a new run, the rejected file still has no reason: {names:?}"
        );
        assert_eq!(dot_files(&sb.rejected()), Vec::<String>::new(), "temporary file left");
        return;
    }
    panic!("no kill landed in the window in 50 attempts");
}

// ---------------------------------------------------------------------------------------------
// Concurrent runs and readers.

/// The body of the reader processes that `concurrent_runs_and_readers_...` starts (this test
/// binary, run with `--exact reader_process`): reads the store in a loop until told to stop,
/// checking each snapshot for a half-applied file. Without `CRASH_READER_STORE` it does nothing.
#[test]
fn reader_process() {
    let Ok(store) = std::env::var("CRASH_READER_STORE") else { return };
    let stop = std::path::PathBuf::from(std::env::var("CRASH_READER_STOP").unwrap());
    let store = Path::new(&store);
    let (mut snapshots, mut early) = (0, 0);
    let mut conn: Option<Connection> = None;
    loop {
        let stopping = stop.exists();
        if conn.is_none() && store.exists() {
            let c = Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
                .expect("reader: open the store");
            c.busy_timeout(Duration::from_secs(60)).unwrap();
            conn = Some(c);
        }
        if let Some(c) = &conn {
            match read_snapshot(c) {
                Ok(true) => snapshots += 1,
                Ok(false) => early += 1,
                Err(e) => panic!("reader: {e}"),
            }
            // A fresh connection now and then, as a dashboard polling the store would open.
            if (snapshots + early) % 25 == 0 {
                conn = None;
            }
        }
        if stopping {
            break;
        }
    }
    println!("READER snapshots={snapshots} early={early}");
}

/// Reads one consistent snapshot; `Ok(false)` when the schema is not there yet.
fn read_snapshot(db: &Connection) -> Result<bool, String> {
    let fail = |what: &str, e: rusqlite::Error| format!("{what}: {e}");
    db.execute_batch("BEGIN").map_err(|e| fail("BEGIN", e))?;
    let result = (|| {
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('ledger', 'record_data', 'catalog', 'records')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| fail("schema", e))?;
        if tables < 4 {
            return Ok(false);
        }
        let one = |sql: &str| -> Result<i64, String> {
            db.query_row(sql, [], |r| r.get(0)).map_err(|e| fail(sql, e))
        };
        let stored = one("SELECT count(*) FROM record_data")?;
        let inserted =
            one("SELECT coalesce(sum(rows_inserted), 0) FROM ledger WHERE status = 'applied'")?;
        ensure!(
            stored == inserted,
            "{stored} rows stored, but the ledger says {inserted} inserted"
        );
        let orphans = one("SELECT count(*) FROM record_data r WHERE NOT EXISTS
             (SELECT 1 FROM ledger l WHERE l.id = r.file_id AND l.status = 'applied')")?;
        ensure!(orphans == 0, "{orphans} rows written by a file the ledger does not show applied");
        let live = one("SELECT count(*) FROM catalog WHERE dropped_by IS NULL")?;
        let mut stmt = db.prepare("SELECT * FROM records").map_err(|e| fail("records", e))?;
        // Before the first file the view holds the bare key column of an empty table.
        ensure!(
            stmt.column_count() as i64 == live.max(1),
            "the records view and the catalog disagree"
        );
        let mut rows = stmt.query([]).map_err(|e| fail("records", e))?;
        let mut seen = 0;
        while rows.next().map_err(|e| fail("records", e))?.is_some() {
            seen += 1;
        }
        ensure!(seen == stored, "records shows {seen} rows, record_data {stored}");
        Ok(true)
    })();
    db.execute_batch("COMMIT").map_err(|e| fail("COMMIT", e))?;
    result
}

fn start_reader(sb: &Sandbox, stop: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["reader_process", "--exact", "--nocapture", "--test-threads", "1"])
        .env("CRASH_READER_STORE", sb.store_path())
        .env("CRASH_READER_STOP", stop)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a reader")
}

/// A file big enough to keep a run busy for a while: its transaction is long, and readers
/// must never see half of it.
fn big_file() -> Delivery {
    delivery(
        "90_big.csv",
        rows("cluster_name,region,cpu,mem,owner", 0..6000, |i| {
            format!("c{i:04},r{},{},{},o{}", i % 7, i * 3, i * 5, i % 11)
        }),
    )
}

#[test]
fn concurrent_runs_and_readers_serialise_and_match_one_run() {
    const RUNS: usize = 4;
    const READERS: usize = 3;
    let big = big_file();

    // One run per batch, then one for the big file: what the concurrent runs must come to.
    let mut serial = sandbox();
    for batch in 0..2 {
        drop_batch(&mut serial, batch);
        run_with(&serial, None);
    }
    serial.drop_bytes(big.name, &big.bytes);
    run_with(&serial, None);
    let want = outcome(&serial).unwrap();

    let mut sb = sandbox();
    sb.set("lock_timeout_seconds", serde_json::json!(120));
    let stop = sb.path("stop-readers");
    // The readers start before the store exists, as a dashboard might.
    let readers: Vec<Child> = (0..READERS).map(|_| start_reader(&sb, &stop)).collect();

    for phase in 0..3 {
        if phase < 2 {
            drop_batch(&mut sb, phase);
        } else {
            sb.drop_bytes(big.name, &big.bytes);
        }
        let runs: Vec<Child> = (0..RUNS)
            .map(|_| {
                command(&sb, None).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        let outs: Vec<Output> = runs.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let mut busy = 0;
        for out in &outs {
            let all = text(out);
            for wrong in ["database is locked", "holds the lock", "busy"] {
                assert!(!all.contains(wrong), "phase {phase}: {all}");
            }
            assert!(matches!(out.status.code(), Some(0 | 2)), "phase {phase}: {all}");
            if !stdout(out).contains("0 applied, 0 rejected, 0 duplicate") {
                busy += 1;
            }
        }
        // One run found the files; the others, waiting for the lock, found an empty inbox.
        assert_eq!(busy, 1, "phase {phase}: {}", outs.iter().map(text).collect::<String>());
        assert!(sb.names_in(&sb.inbox()).is_empty());
    }

    fs::write(&stop, b"").unwrap();
    let mut snapshots = 0;
    for reader in readers {
        let out = reader.wait_with_output().unwrap();
        let said = text(&out);
        assert!(out.status.success(), "a reader failed:\n{said}");
        let tag = "READER snapshots=";
        let at = said.find(tag).unwrap_or_else(|| panic!("a reader said nothing:\n{said}"));
        let count = said[at + tag.len()..].split(' ').next().unwrap();
        snapshots += count.parse::<usize>().unwrap();
    }
    assert!(snapshots > 0, "the readers never saw the store");

    // No two runs overlapped: the runs' times do not interleave, and each run's files are
    // together in the ledger.
    let db = sb.db();
    let runs: Vec<(i64, String, String)> =
        query(&db, "SELECT id, started_at, finished_at FROM run ORDER BY id", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        });
    assert_eq!(runs.len(), 3 * RUNS);
    let mut by_start = runs.clone();
    by_start.sort_by(|a, b| a.1.cmp(&b.1));
    for pair in by_start.windows(2) {
        assert!(pair[0].2 <= pair[1].1, "runs overlap: {pair:?}");
    }
    let order: Vec<i64> = query(&db, "SELECT run_id FROM ledger ORDER BY id", |r| r.get(0));
    let mut groups = order.clone();
    groups.dedup();
    let distinct: std::collections::BTreeSet<i64> = groups.iter().copied().collect();
    assert_eq!(groups.len(), distinct.len(), "files of runs interleave in the ledger: {order:?}");
    drop(db);

    let got = outcome(&sb).unwrap();
    assert!(got == want, "differs from one run at a time:{}", differences(&want, &got));
}

/// After an export, a run records the data generation the master CSV was written from
/// (`export_generation`) and the master's checksum (`export_checksum`) in one transaction: no
/// reader may ever see the new generation beside the old checksum, and a run killed as soon as
/// the new generation shows must leave a store whose checksum is the master CSV's after the
/// next run.
#[test]
fn a_kill_between_the_two_export_marks_cannot_leave_a_stale_export_checksum() {
    let meta = |db: &Connection, name: &str| -> Option<String> {
        db.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get(0)).ok()
    };
    for attempt in 0..30 {
        let mut sb = sandbox();
        sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
        run_with(&sb, None);
        let db = sb.db();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let old = meta(&db, "export_checksum").unwrap();
        assert_eq!(old, xxh128_hex(sb.master_text().as_bytes()));

        sb.drop_bytes("b.csv", b"cluster_name,cpu\nc2,2\n");
        let mut child =
            command(&sb, None).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        loop {
            let generation = meta(&db, "export_generation");
            let checksum = meta(&db, "export_checksum");
            assert!(
                !(generation.as_deref() == Some("2") && checksum.as_deref() == Some(old.as_str())),
                "attempt {attempt}: a reader saw the new export generation beside the old checksum"
            );
            if generation.as_deref() == Some("2") {
                child.kill().ok();
                child.wait().unwrap();
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }

        let out = run_with(&sb, None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(sb.master_text(), "cluster_name,cpu\nc1,1\nc2,2\n");
        assert_eq!(
            meta(&db, "export_checksum"),
            Some(xxh128_hex(sb.master_text().as_bytes())),
            "attempt {attempt}: after a kill and a new run, export_checksum is not the master CSV's"
        );
    }
}
