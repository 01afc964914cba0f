//! Replays the real S&P 500 constituents history (190 snapshots taken over fourteen years, in
//! `shared/data/sp500-history`) through the binary, twice: every snapshot dropped into the inbox
//! before one run, and one snapshot per run. Both replays must end in the same store and the same
//! master CSV, and both must agree with an independent model of the merge built here from the
//! files themselves: the last accepted snapshot holding a company gives its whole row, the files
//! with ragged rows are rejected at their first ragged line, and a column is kept while some
//! stored row holds a value for it.
//!
//! The two replays are run once per test binary (each behind a `OnceLock`) and shared by the
//! tests, which then only look at the results.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::{Run, Sandbox, xxh128_hex};
use serde_json::{Value, json};

const KEY: &str = "Symbol";

// ---------------------------------------------------------------------------------------------
// Reading the snapshots without the product's CSV reader.

/// One record of a CSV file: the physical line it starts on (the header is line 1) and its
/// fields.
type Record = (u64, Vec<String>);

/// Splits CSV text into records, counting physical lines the way a person counts them in an
/// editor: LF, CRLF and a lone CR each end a line, also inside a quoted field (the record keeps
/// the line it starts on). Quotes follow RFC 4180, `""` standing for one quote inside a quoted
/// field.
fn parse_csv(text: &str) -> Vec<Record> {
    let chars: Vec<char> = text.chars().collect();
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1u64;
    let mut start_line = 1u64;
    let mut in_quotes = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let line_break = c == '\n' || c == '\r';
        let width = if c == '\r' && chars.get(i + 1) == Some(&'\n') { 2 } else { 1 };
        if in_quotes {
            if c == '"' && chars.get(i + 1) == Some(&'"') {
                field.push('"');
                i += 2;
                continue;
            }
            if c == '"' {
                in_quotes = false;
            } else {
                chars[i..i + width].iter().for_each(|&c| field.push(c));
                if line_break {
                    line += 1;
                }
            }
            i += width;
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => fields.push(std::mem::take(&mut field)),
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
            }
            _ => field.push(c),
        }
        i += width;
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((start_line, fields));
    }
    records
}

/// A header name as the product compares it: trimmed, ASCII case ignored.
fn folded(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

struct Snapshot {
    name: String,
    path: PathBuf,
    checksum: String,
    /// Header names, trimmed.
    header: Vec<String>,
    /// Data records, blank ones (every field empty) left out as the product skips them.
    rows: Vec<Record>,
    /// The first data line whose field count differs from the header's.
    first_ragged: Option<u64>,
}

impl Snapshot {
    fn load(path: PathBuf) -> Snapshot {
        let bytes = fs::read(&path).unwrap();
        let text = String::from_utf8(bytes.clone()).expect("the snapshots are UTF-8");
        let mut records = parse_csv(&text).into_iter();
        let (_, header) = records.next().expect("a header");
        let header: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| if i == 0 { h.trim_start_matches('\u{feff}') } else { h })
            .map(|h| h.trim().to_string())
            .collect();
        let rows: Vec<Record> =
            records.filter(|(_, fields)| fields.iter().any(|f| !f.is_empty())).collect();
        let first_ragged =
            rows.iter().find(|(_, fields)| fields.len() != header.len()).map(|(line, _)| *line);
        Snapshot {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            checksum: xxh128_hex(&bytes),
            path,
            header,
            rows,
            first_ragged,
        }
    }

    fn accepted(&self) -> bool {
        self.first_ragged.is_none()
    }

    fn key_index(&self) -> usize {
        self.header
            .iter()
            .position(|h| folded(h) == folded(KEY))
            .expect("every snapshot has a Symbol column")
    }

    /// The last row of `key` in this snapshot, as (folded column name, value) pairs.
    fn row_of(&self, key: &str) -> Option<HashMap<String, String>> {
        let k = self.key_index();
        self.rows.iter().rev().find(|(_, f)| f[k] == key).map(|(_, fields)| {
            self.header.iter().map(|h| folded(h)).zip(fields.iter().cloned()).collect()
        })
    }
}

/// Every snapshot, in name order (which is time order).
fn snapshots() -> &'static [Snapshot] {
    static SNAPSHOTS: OnceLock<Vec<Snapshot>> = OnceLock::new();
    SNAPSHOTS.get_or_init(|| {
        let dir = common::shared_dir().join("data/sp500-history");
        let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        paths.sort();
        assert_eq!(paths.len(), 190, "expected the 190 snapshots in {}", dir.display());
        paths.into_iter().map(Snapshot::load).collect()
    })
}

// ---------------------------------------------------------------------------------------------
// The model of the merge.

struct ModelRow {
    /// (snapshot index, line): later snapshots' rows come last in the master CSV.
    order: (usize, u64),
    /// Non-empty values by folded column name, the key included.
    values: HashMap<String, String>,
}

struct Model {
    /// Live columns in the order they were (last) added: the key first.
    columns: Vec<String>,
    rows: HashMap<String, ModelRow>,
}

impl Model {
    fn build() -> Model {
        let mut columns: Vec<String> = Vec::new();
        let mut rows: HashMap<String, ModelRow> = HashMap::new();
        for (index, snap) in snapshots().iter().enumerate().filter(|(_, s)| s.accepted()) {
            for name in &snap.header {
                if !columns.iter().any(|c| folded(c) == folded(name)) {
                    columns.push(name.clone());
                }
            }
            let k = snap.key_index();
            for (line, fields) in &snap.rows {
                let values = snap
                    .header
                    .iter()
                    .zip(fields)
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(h, v)| (folded(h), v.clone()))
                    .collect();
                rows.insert(fields[k].clone(), ModelRow { order: (index, *line), values });
            }
            // A column no stored row holds a value for any more is dropped.
            columns.retain(|c| {
                folded(c) == folded(KEY) || rows.values().any(|r| r.values.contains_key(&folded(c)))
            });
        }
        Model { columns, rows }
    }

    /// The master CSV the product should write: columns sorted by code point, rows in order of
    /// their last writing.
    fn master(&self) -> String {
        let mut names = self.columns.clone();
        names.sort();
        let mut out = csv_line(&names);
        let mut rows: Vec<&ModelRow> = self.rows.values().collect();
        rows.sort_by_key(|r| r.order);
        for row in rows {
            let fields: Vec<String> = names
                .iter()
                .map(|n| row.values.get(&folded(n)).cloned().unwrap_or_default())
                .collect();
            out.push_str(&csv_line(&fields));
        }
        out
    }
}

fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(Model::build)
}

// ---------------------------------------------------------------------------------------------
// The two replays.

struct Replay {
    sb: Sandbox,
    /// The runs, each with the snapshots dropped just before it.
    runs: Vec<(Vec<String>, Run)>,
}

fn sandbox() -> Sandbox {
    Sandbox::with_config(json!({ "key_column": KEY }))
}

/// Every snapshot in the inbox (modification times in name order), then one run.
fn all_at_once() -> &'static Replay {
    static REPLAY: OnceLock<Replay> = OnceLock::new();
    REPLAY.get_or_init(|| {
        let mut sb = sandbox();
        for snap in snapshots() {
            sb.drop_file(&snap.path, &snap.name);
        }
        let run = sb.run();
        let names = snapshots().iter().map(|s| s.name.clone()).collect();
        Replay { sb, runs: vec![(names, run)] }
    })
}

/// Drop one snapshot, run, drop the next, run, and so on.
fn one_per_run() -> &'static Replay {
    static REPLAY: OnceLock<Replay> = OnceLock::new();
    REPLAY.get_or_init(|| {
        let mut sb = sandbox();
        let mut runs = Vec::new();
        for snap in snapshots() {
            sb.drop_file(&snap.path, &snap.name);
            runs.push((vec![snap.name.clone()], sb.run()));
        }
        Replay { sb, runs }
    })
}

/// Both replays, run side by side.
fn both() -> [&'static Replay; 2] {
    std::thread::scope(|s| {
        let each = s.spawn(one_per_run);
        let all = all_at_once();
        [all, each.join().unwrap()]
    })
}

/// (name, status, checksum, rule, line, error) of every ledger row, oldest first.
type LedgerRow = (String, String, String, Option<String>, Option<i64>, Option<String>);

fn ledger(sb: &Sandbox) -> Vec<LedgerRow> {
    let db = sb.db();
    let mut stmt = db
        .prepare("SELECT name, status, checksum, rule, line, error FROM ledger ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The names of the files in an archive-like folder, without the time stamp the product adds
/// (`<name>.<YYYYmmddTHHMMSS.fff>`), and without the reason files.
fn delivered_names(sb: &Sandbox, dir: &std::path::Path) -> BTreeSet<String> {
    sb.names_in(dir)
        .into_iter()
        .filter(|n| !n.ends_with(".json"))
        .map(|n| n[..n.find(".csv.").expect("an archived name keeps its .csv") + 4].to_string())
        .collect()
}

fn metadata_without_time(sb: &Sandbox) -> Value {
    let mut meta: Value = serde_json::from_slice(&fs::read(sb.metadata()).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("last_updated").expect("metadata has last_updated");
    meta
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn one_run_and_one_run_per_snapshot_end_identical() {
    let [all, each] = both();

    assert_eq!(
        all.runs[0].1.status, 2,
        "ragged snapshots make the run exit 2\n{:?}",
        all.runs[0].1
    );
    let a = all.sb.master_text();
    let b = each.sb.master_text();
    assert!(a == b, "master CSVs differ:\n{}", first_difference(&a, &b));
    assert_eq!(metadata_without_time(&all.sb), metadata_without_time(&each.sb));

    let project = |sb: &Sandbox| -> Vec<(String, String, String)> {
        ledger(sb)
            .into_iter()
            .map(|(name, status, checksum, ..)| (name, status, checksum))
            .collect()
    };
    assert_eq!(project(&all.sb), project(&each.sb), "ledgers differ");
    assert_eq!(all.sb.catalog(), each.sb.catalog(), "catalogs differ");

    for replay in [all, each] {
        let sb = &replay.sb;
        assert!(sb.names_in(&sb.inbox()).is_empty(), "inbox not empty");
        let accepted: BTreeSet<String> =
            snapshots().iter().filter(|s| s.accepted()).map(|s| s.name.clone()).collect();
        let rejected: BTreeSet<String> =
            snapshots().iter().filter(|s| !s.accepted()).map(|s| s.name.clone()).collect();
        assert_eq!(delivered_names(sb, &sb.archive()), accepted, "archive");
        assert_eq!(delivered_names(sb, &sb.rejected()), rejected, "rejected folder");
        let applied: BTreeSet<String> =
            ledger(sb).into_iter().filter(|r| r.1 == "applied").map(|r| r.0).collect();
        assert_eq!(applied, accepted, "applied files");
    }
}

#[test]
fn one_run_per_snapshot_exits_2_exactly_for_the_ragged_ones() {
    let each = one_per_run();
    for (names, run) in &each.runs {
        let snap = snapshots().iter().find(|s| s.name == names[0]).unwrap();
        let expected = if snap.accepted() { 0 } else { 2 };
        assert_eq!(run.status, expected, "{}\n{run:?}", snap.name);
    }
}

#[test]
fn master_csv_matches_an_independent_model_of_the_merge() {
    let all = all_at_once();
    let expected = model().master();
    let got = all.sb.master_text();
    assert!(
        got == expected,
        "master CSV differs from the model:\n{}",
        first_difference(&expected, &got)
    );

    // The catalog keeps the columns in the order they were first seen, key first.
    assert_eq!(all.sb.catalog(), model().columns);
    assert_eq!(all.sb.row_count() as usize, model().rows.len());

    let meta = metadata_without_time(&all.sb);
    let accepted = snapshots().iter().filter(|s| s.accepted()).count();
    assert_eq!(meta["files_applied"], json!(accepted));
    assert_eq!(meta["row_count"], json!(model().rows.len()));
    assert_eq!(meta["key_column"], json!(KEY));
    assert_eq!(meta["merged_file_xxh3_128"], json!(xxh128_hex(expected.as_bytes())));
}

#[test]
fn exactly_the_ragged_snapshots_are_rejected_at_their_first_ragged_line() {
    let expected: BTreeMap<String, u64> = snapshots()
        .iter()
        .filter_map(|s| s.first_ragged.map(|line| (s.name.clone(), line)))
        .collect();
    assert!(!expected.is_empty(), "the history is known to hold ragged snapshots");

    for replay in both() {
        let sb = &replay.sb;
        let rejected: BTreeMap<String, u64> = ledger(sb)
            .into_iter()
            .filter(|r| r.1 == "rejected")
            .map(|(name, _, _, rule, line, error)| {
                assert_eq!(rule.as_deref(), Some("ragged_row"), "{name}");
                let line = line.unwrap_or_else(|| panic!("{name}: no line in the ledger")) as u64;
                let error = error.unwrap();
                assert!(
                    error.contains(&name) && error.contains(&format!("line {line}")),
                    "{error}"
                );
                (name, line)
            })
            .collect();
        assert_eq!(rejected, expected, "rejected files and their lines");

        // What the user sees names the file and the line.
        let printed: String = replay.runs.iter().map(|(_, run)| run.text()).collect();
        for (name, line) in &expected {
            let said = format!("rejected {name}: line {line}");
            assert!(printed.contains(&said), "nothing printed says {said:?}");
        }

        // Each rejected file sits, unchanged, in the rejected folder with its reason.
        let files = sb.names_in(&sb.rejected());
        assert_eq!(files.len(), 2 * expected.len(), "{files:?}");
        for (name, line) in &expected {
            let snap = snapshots().iter().find(|s| &s.name == name).unwrap();
            let kept: Vec<&String> = files
                .iter()
                .filter(|f| f.starts_with(&format!("{name}.")) && !f.ends_with(".json"))
                .collect();
            assert_eq!(kept.len(), 1, "{name}: {files:?}");
            let kept = sb.rejected().join(kept[0]);
            assert_eq!(xxh128_hex(&fs::read(&kept).unwrap()), snap.checksum, "{name} changed");

            let mut reason_path = kept.into_os_string();
            reason_path.push(".json");
            let reason: Value = serde_json::from_slice(&fs::read(&reason_path).unwrap()).unwrap();
            assert_eq!(reason["file"], json!(name));
            assert_eq!(reason["rule"], json!("ragged_row"));
            assert_eq!(reason["line"], json!(line));
            assert_eq!(reason["checksum"], json!(snap.checksum));
            let message = reason["message"].as_str().unwrap();
            assert!(
                message.contains(name.as_str()) && message.contains(&format!("line {line}")),
                "{message}"
            );
        }
    }
}

/// Companies chosen for their history: some left the index (some while the header was still
/// Symbol,Name,Sector, some later), some moved sector, one stayed the same all along.
const SAMPLE: &[&str] =
    &["ANF", "EMC", "KORS", "DFS", "LVLT", "FB", "GOOGL", "NFLX", "OKE", "AAPL"];

#[test]
fn sampled_companies_carry_their_last_accepted_snapshot() {
    let all = all_at_once();
    let accepted: Vec<&Snapshot> = snapshots().iter().filter(|s| s.accepted()).collect();
    let newest = accepted.last().unwrap();
    let sector_of = |snap: &Snapshot, key: &str| -> Option<String> {
        let row = snap.row_of(key)?;
        row.get("gics sector").or_else(|| row.get("sector")).cloned()
    };

    let mut left = 0;
    let mut moved = 0;
    for &key in SAMPLE {
        let holding: Vec<&&Snapshot> =
            accepted.iter().filter(|s| s.row_of(key).is_some()).collect();
        let last = holding.last().unwrap_or_else(|| panic!("{key} is in no accepted snapshot"));
        let sectors: BTreeSet<String> = holding.iter().filter_map(|s| sector_of(s, key)).collect();
        left += usize::from(newest.row_of(key).is_none());
        moved += usize::from(sectors.len() > 1);

        let expected = last.row_of(key).unwrap();
        for column in all.sb.catalog() {
            let want = expected.get(&folded(&column)).filter(|v| !v.is_empty()).cloned();
            assert_eq!(
                all.sb.value(key, &column),
                want,
                "{key}, column {column:?}: should come from {}",
                last.name
            );
        }
    }
    assert!(
        left >= 4 && moved >= 4,
        "the sample should hold companies that left ({left}) and moved ({moved})"
    );
}

fn first_difference(a: &str, b: &str) -> String {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    let i = (0..la.len().max(lb.len())).find(|&i| la.get(i) != lb.get(i)).unwrap_or(0);
    format!(
        "line {}: {:?}\n      vs {:?}\n({} vs {} lines)",
        i + 1,
        la.get(i),
        lb.get(i),
        la.len(),
        lb.len()
    )
}
