//! The integration-test harness: each test gets its own folder with a config, an inbox and a
//! store, and runs the real `csv-watchdog` binary against it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use serde_json::{Map, Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_csv-watchdog");

/// The shared test material (`shared/`: cases and the sp500 history). Looked for in
/// `$CSV_WATCHDOG_SHARED`, next to the repository, and next to the repository it was cloned
/// from when that is a folder on this machine (a clone made elsewhere for a quick try).
pub fn shared_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("CSV_WATCHDOG_SHARED").map(PathBuf::from).into_iter().collect();
    candidates.extend([root.join("../shared"), root.join("shared")]);
    if let Some(origin) = clone_origin(root) {
        candidates.push(origin.join("../shared"));
    }
    for candidate in &candidates {
        if candidate.join("cases").is_dir() {
            return candidate.clone();
        }
    }
    panic!(
        "cannot find the shared/ folder (looked in {candidates:?}); clone next to it or set CSV_WATCHDOG_SHARED"
    )
}

/// The local folder this repository was cloned from, if it was.
fn clone_origin(root: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["config", "--get", "remote.origin.url"])
        .output()
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(url.trim().trim_start_matches("file://"));
    path.is_dir().then_some(path)
}

pub fn case_input(name: &str) -> PathBuf {
    shared_dir().join("cases/inputs").join(name)
}

/// The result of one run of the binary, with everything it printed.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Everything printed, for assertions on messages and for failure output.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// A scratch installation: config.json, inbox, archive, rejected folder, store, exports.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub config: Map<String, Value>,
    /// Modification time given to the next dropped file; each drop moves it one second on, so
    /// files are applied in the order they were dropped.
    next_mtime: SystemTime,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::with_config(json!({}))
    }

    /// A sandbox whose config is the defaults, no stability wait, plus `extra`.
    pub fn with_config(extra: Value) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Map::new();
        config.insert("checksum_wait_seconds".into(), json!(0));
        config.insert("lock_timeout_seconds".into(), json!(5));
        if let Value::Object(extra) = extra {
            config.extend(extra);
        }
        let sandbox = Sandbox {
            dir,
            config,
            next_mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        sandbox.write_config();
        fs::create_dir_all(sandbox.inbox()).unwrap();
        sandbox
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.config.insert(key.into(), value);
        self.write_config();
    }

    fn write_config(&self) {
        fs::write(self.path("config.json"), serde_json::to_string_pretty(&self.config).unwrap())
            .unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn configured(&self, key: &str, default: &str) -> PathBuf {
        self.path(self.config.get(key).and_then(Value::as_str).unwrap_or(default))
    }

    pub fn inbox(&self) -> PathBuf {
        self.configured("watch_dir", "csv_inbox")
    }
    pub fn archive(&self) -> PathBuf {
        self.configured("archive_dir", "csv_archive")
    }
    pub fn rejected(&self) -> PathBuf {
        self.configured("rejected_dir", "csv_rejected")
    }
    pub fn master(&self) -> PathBuf {
        self.configured("merged_file", "final_clusters_data.csv")
    }
    pub fn metadata(&self) -> PathBuf {
        self.configured("metadata_file", "final_clusters_metadata.json")
    }
    pub fn store_path(&self) -> PathBuf {
        self.configured("store_file", "csv_watchdog.db")
    }

    /// Puts a file with `bytes` into the inbox, with the next modification time.
    pub fn drop_bytes(&mut self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.inbox().join(name);
        fs::write(&path, bytes).unwrap();
        self.stamp(&path);
        path
    }

    /// Copies a file into the inbox under `name`, with the next modification time.
    pub fn drop_file(&mut self, source: &Path, name: &str) -> PathBuf {
        let path = self.inbox().join(name);
        fs::copy(source, &path).unwrap();
        self.stamp(&path);
        path
    }

    /// Copies one of the shared case inputs into the inbox under its own name.
    pub fn drop_case(&mut self, name: &str) -> PathBuf {
        self.drop_file(&case_input(name), name)
    }

    fn stamp(&mut self, path: &Path) {
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(self.next_mtime).unwrap();
        self.next_mtime += Duration::from_secs(1);
    }

    /// Runs the binary with `--config` and `args`.
    pub fn cmd(&self, args: &[&str]) -> Run {
        let output = Command::new(BIN)
            .arg("--config")
            .arg(self.path("config.json"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("CSV_MONITOR_CONFIG")
            .output()
            .expect("run csv-watchdog");
        Run::from(output)
    }

    pub fn run(&self) -> Run {
        self.cmd(&["run"])
    }

    /// Runs and asserts the exit status.
    pub fn run_expect(&self, status: i32) -> Run {
        let run = self.run();
        assert_eq!(run.status, status, "unexpected exit status\n{run:?}");
        run
    }

    pub fn db(&self) -> Connection {
        Connection::open(self.store_path()).expect("open store")
    }

    /// The stored value of `column` (by CSV name) for `key`: None when the row or value is missing.
    pub fn value(&self, key: &str, column: &str) -> Option<String> {
        if !self.catalog().iter().any(|c| c.eq_ignore_ascii_case(column)) {
            // A double-quoted name that is not a column would read as a string literal.
            return None;
        }
        let db = self.db();
        let sql = format!(
            "SELECT \"{}\" FROM records WHERE \"{}\" = ?1",
            column.replace('"', "\"\""),
            self.key_name(&db).replace('"', "\"\"")
        );
        db.query_row(&sql, [key], |r| r.get::<_, Option<String>>(0)).ok().flatten()
    }

    fn key_name(&self, db: &Connection) -> String {
        db.query_row("SELECT name FROM catalog WHERE is_key = 1 AND dropped_by IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap_or_else(|_| "cluster_name".into())
    }

    pub fn row_count(&self) -> i64 {
        self.db().query_row("SELECT count(*) FROM record_data", [], |r| r.get(0)).unwrap()
    }

    /// Live catalog column names, in first-seen order.
    pub fn catalog(&self) -> Vec<String> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT name FROM catalog WHERE dropped_by IS NULL ORDER BY is_key DESC, position",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    /// (name, status, checksum, error) of every ledger row, oldest first.
    pub fn ledger(&self) -> Vec<(String, String, String, Option<String>)> {
        let db = self.db();
        let mut stmt =
            db.prepare("SELECT name, status, checksum, error FROM ledger ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn master_text(&self) -> String {
        fs::read_to_string(self.master()).expect("master CSV")
    }

    /// File names in a folder, sorted.
    pub fn names_in(&self, dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(dir) {
            Ok(entries) => {
                entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
            }
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }
}

/// XXH3-128 of bytes, as `xxhsum -H2` prints it.
pub fn xxh128_hex(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}
