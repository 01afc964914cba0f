//! Differential property test: random sequences of random CSV files are applied by the real
//! binary and by a small model of the merge semantics written here; the master CSVs must be
//! byte-equal after every run.
//!
//! The default run is sized to finish in about a minute in a debug build on a busy machine; set
//! `PROPTEST_CASES` for a longer run (each case spends that many cases per property).

mod common;

use std::collections::HashMap;

use common::Sandbox;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 250;

const KEY: &str = "cluster_name";

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnOrder {
    Sorted,
    FirstSeen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowOrder {
    Arrival,
    Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Orders {
    columns: ColumnOrder,
    rows: RowOrder,
}

impl Orders {
    const DEFAULT: Orders = Orders { columns: ColumnOrder::Sorted, rows: RowOrder::Arrival };

    fn sandbox(self) -> Sandbox {
        if self == Orders::DEFAULT {
            return Sandbox::new();
        }
        let columns = match self.columns {
            ColumnOrder::Sorted => "sorted",
            ColumnOrder::FirstSeen => "first_seen",
        };
        let rows = match self.rows {
            RowOrder::Arrival => "arrival",
            RowOrder::Key => "key",
        };
        Sandbox::with_config(json!({ "column_order": columns, "row_order": rows }))
    }
}

/// A live column: its first-seen spelling and its folded form.
#[derive(Debug, Clone)]
struct ModelColumn {
    name: String,
    folded: String,
    is_key: bool,
}

/// A stored row: its key and its non-null values by folded column name.
#[derive(Debug, Clone)]
struct ModelRow {
    key: String,
    values: HashMap<String, String>,
}

/// What the spec says the store holds, kept in the simplest possible form.
#[derive(Debug, Clone, Default)]
struct Model {
    /// Live columns in first-seen order (a column that comes back goes to the end).
    columns: Vec<ModelColumn>,
    /// Rows in arrival order.
    rows: Vec<ModelRow>,
    applied_any: bool,
}

fn fold(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

impl Model {
    /// Applies one file's records (header first); returns false when the file is rejected, in
    /// which case nothing changed.
    fn apply(&mut self, records: &[Vec<String>]) -> bool {
        let Some((header, data)) = records.split_first() else { return false };
        let names: Vec<&str> = header.iter().map(|h| h.trim()).collect();
        let folded: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        if names.iter().any(|n| n.is_empty()) {
            return false;
        }
        if (1..folded.len()).any(|i| folded[..i].contains(&folded[i])) {
            return false;
        }
        let Some(key_index) = folded.iter().position(|f| f == KEY) else { return false };

        let rows: Vec<&Vec<String>> =
            data.iter().filter(|r| !r.iter().all(|f| f.is_empty())).collect();
        if rows.iter().any(|r| r.len() != names.len() || r[key_index].is_empty()) {
            return false;
        }
        if rows.is_empty() {
            return false;
        }

        for (i, name) in names.iter().enumerate() {
            if !self.columns.iter().any(|c| c.folded == folded[i]) {
                self.columns.push(ModelColumn {
                    name: name.to_string(),
                    folded: folded[i].clone(),
                    is_key: i == key_index,
                });
            }
        }
        for row in rows {
            let key = row[key_index].clone();
            self.rows.retain(|r| r.key != key);
            let values = (0..names.len())
                .filter(|&i| i != key_index && !row[i].is_empty())
                .map(|i| (folded[i].clone(), row[i].clone()))
                .collect();
            self.rows.push(ModelRow { key, values });
        }
        let rows = &self.rows;
        self.columns.retain(|c| c.is_key || rows.iter().any(|r| r.values.contains_key(&c.folded)));
        self.applied_any = true;
        true
    }

    /// Live columns, key first, then the others in first-seen order.
    fn first_seen(&self) -> Vec<&ModelColumn> {
        let mut columns: Vec<&ModelColumn> = self.columns.iter().collect();
        columns.sort_by_key(|c| !c.is_key);
        columns
    }

    /// The master CSV the spec asks for, or None when no file was ever applied.
    fn master(&self, orders: Orders) -> Option<String> {
        if !self.applied_any {
            return None;
        }
        let mut columns = self.first_seen();
        if orders.columns == ColumnOrder::Sorted {
            columns.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let mut rows: Vec<&ModelRow> = self.rows.iter().collect();
        if orders.rows == RowOrder::Key {
            rows.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        }

        let mut out = String::new();
        let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        write_master_record(&mut out, &header);
        for row in rows {
            let fields: Vec<&str> = columns
                .iter()
                .map(|c| {
                    if c.is_key {
                        row.key.as_str()
                    } else {
                        row.values.get(&c.folded).map_or("", String::as_str)
                    }
                })
                .collect();
            write_master_record(&mut out, &fields);
        }
        Some(out)
    }
}

/// One record of the master CSV: minimal quoting, `\n` line end.
fn write_master_record(out: &mut String, fields: &[&str]) {
    if fields.len() == 1 && fields[0].is_empty() {
        out.push_str("\"\"\n");
        return;
    }
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\r', '\n']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_string()
            }
        })
        .collect();
    out.push_str(&quoted.join(","));
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// Input files and how they are written
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eol {
    Lf,
    Crlf,
    /// LF and CRLF alternating, record by record.
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// Only fields that need it.
    Minimal,
    /// Every field.
    All,
    /// Fields that need it, and every other field besides.
    Alternate,
}

/// One generated input file: its records (header first) and how they are written out.
#[derive(Debug, Clone)]
struct InputFile {
    records: Vec<Vec<String>>,
    eol: Eol,
    quoting: Quoting,
    final_eol: bool,
    /// Write a blank line before the data record with this index (a blank line is a row of
    /// empty fields, which is skipped).
    blank_before: Option<usize>,
}

impl InputFile {
    fn bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        let last = self.records.len() - 1;
        for (i, record) in self.records.iter().enumerate() {
            if i > 0 && self.blank_before == Some(i - 1) {
                out.push_str(self.eol(i));
            }
            let fields: Vec<String> = record
                .iter()
                .enumerate()
                .map(|(j, f)| {
                    let needed = f.contains([',', '"', '\r', '\n'])
                        // A record of one empty field would be a blank line, which the CSV
                        // reader skips: a header must not vanish that way.
                        || (record.len() == 1 && f.is_empty());
                    let quote = needed
                        || match self.quoting {
                            Quoting::Minimal => false,
                            Quoting::All => true,
                            Quoting::Alternate => (i + j) % 2 == 0,
                        };
                    if quote { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() }
                })
                .collect();
            out.push_str(&fields.join(","));
            if i < last || self.final_eol {
                out.push_str(self.eol(i));
            }
        }
        out.into_bytes()
    }

    fn eol(&self, i: usize) -> &'static str {
        match self.eol {
            Eol::Lf => "\n",
            Eol::Crlf => "\r\n",
            Eol::Mixed if i.is_multiple_of(2) => "\r\n",
            Eol::Mixed => "\n",
        }
    }
}

/// Spellings of the key column (all fold to `cluster_name`).
const KEY_SPELLINGS: &[&str] =
    &["cluster_name", "Cluster_Name", "CLUSTER_NAME", " cluster_name", "cluster_name\t"];

/// Value columns: each inner list holds spellings of one column (same after trim and ASCII
/// case folding). Different lists are different columns, even when they differ only in
/// non-ASCII case.
const COLUMN_GROUPS: &[&[&str]] = &[
    &["cpu", "CPU", "Cpu", " cpu "],
    &["mem", " Mem"],
    &["region"],
    &["\"; DROP TABLE x; --"],
    &["rowid", "ROWID"],
    &["_rowid_"],
    &["oid"],
    &["order", "Order"],
    &["key", "KEY", "Key "],
    &["seq"],
    &["file_id"],
    &["line"],
    &["na\"me", "NA\"ME"],
    &["\"quoted\""],
    &["[br]"],
    &["a.b"],
    &["a,b"],
    &["名前"],
    &["Ünits"],
    &["ünits"],
    &["multi\nline"],
    &["c1"],
];

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["k1", "k2", "k3"]).prop_map(String::from),
        3 => prop::sample::select(vec![
            "K1", "k1 ", " k1", "ключ", "a,b", "q\"t", "l\nb", "c\r\nr", "0042", "42", " ", "é",
            "e\u{301}",
        ])
        .prop_map(String::from),
        1 => "[a-zA-Z0-9 ,\"\n]{1,4}",
    ]
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        3 => prop::sample::select(vec![
            "1", "x", "0042", " padded ", " ", "a,b", "say \"hi\"", "\"", "two\nlines",
            "crlf\r\nin", "lone\rcr", "ünïcödé", "日本語", "NULL", "1.0", ",", "\n",
        ])
        .prop_map(String::from),
        2 => "[a-z0-9 ,\"\r\né中]{0,5}",
    ]
}

/// A well-formed file: key spelling and position, a few value columns, a few rows.
fn good_file() -> impl Strategy<Value = Vec<Vec<String>>> {
    (
        prop::sample::select(KEY_SPELLINGS),
        prop::sample::subsequence((0..COLUMN_GROUPS.len()).collect::<Vec<_>>(), 0..=3),
        prop::collection::vec(any::<Index>(), 3),
        any::<Index>(),
        any::<Index>(),
    )
        .prop_flat_map(|(key, groups, spellings, key_pos, order)| {
            let mut names: Vec<String> = groups
                .iter()
                .zip(&spellings)
                .map(|(&g, s)| s.get(COLUMN_GROUPS[g]).to_string())
                .collect();
            // Rotate so column order is not always the pool's order.
            if !names.is_empty() {
                let by = order.index(names.len());
                names.rotate_left(by);
            }
            let key_pos = key_pos.index(names.len() + 1);
            names.insert(key_pos, key.to_string());
            let width = names.len();
            let row = (key_strategy(), prop::collection::vec(value_strategy(), width - 1))
                .prop_map(move |(k, mut values)| {
                    values.insert(key_pos, k);
                    values
                });
            prop::collection::vec(row, 1..=4).prop_map(move |rows| {
                let mut records = vec![names.clone()];
                records.extend(rows);
                records
            })
        })
}

/// What may be wrong with a file.
#[derive(Debug, Clone)]
enum Fault {
    None,
    /// A row loses its last field, or gains one.
    Ragged(Index, bool),
    /// A row's key is emptied (its other fields given a value, so the row is not all-empty).
    EmptyKey(Index),
    /// A header name is repeated, in another spelling.
    DuplicateHeader(Index),
    /// A header name is blank.
    EmptyHeaderName(Index),
    /// The key column is left out.
    MissingKey,
    /// Every row is made all-empty: no data rows are left.
    NoDataRows,
    /// A row is made all-empty, with as many fields as the header, one fewer or one more (such a
    /// row is skipped whatever its width; the file is still good).
    EmptyRow(Index, usize),
}

fn fault_strategy() -> impl Strategy<Value = Fault> {
    prop_oneof![
        14 => Just(Fault::None),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(i, more)| Fault::Ragged(i, more)),
        1 => any::<Index>().prop_map(Fault::EmptyKey),
        1 => any::<Index>().prop_map(Fault::DuplicateHeader),
        1 => any::<Index>().prop_map(Fault::EmptyHeaderName),
        1 => Just(Fault::MissingKey),
        1 => Just(Fault::NoDataRows),
        2 => (any::<Index>(), 0..3usize).prop_map(|(i, w)| Fault::EmptyRow(i, w)),
    ]
}

fn inject(records: &mut [Vec<String>], fault: &Fault) {
    let key_pos = records[0].iter().position(|h| fold(h) == KEY).expect("good file has a key");
    let rows = records.len() - 1;
    match fault {
        Fault::None => {}
        Fault::Ragged(i, more) => {
            let row = &mut records[1 + i.index(rows)];
            if *more || row.len() == 1 {
                row.push("extra".into());
            } else {
                row.pop();
            }
            // Keep the row from being all-empty, which would make it skipped, not ragged.
            row[0].push('v');
        }
        Fault::EmptyKey(i) => {
            let row = &mut records[1 + i.index(rows)];
            row[key_pos].clear();
            if row.len() == 1 {
                // A one-column row with an empty key is all-empty (skipped); give it a field.
                row.push("v".into());
                records[0].push("v".into());
                for other in records.iter_mut().skip(1) {
                    if other.len() == 1 {
                        other.push("v".into());
                    }
                }
            } else {
                let other = if key_pos == 0 { 1 } else { 0 };
                row[other].push('v');
            }
        }
        Fault::DuplicateHeader(i) => {
            let name = i.get(&records[0]).clone();
            let twin = if name == name.to_ascii_uppercase() {
                format!(" {}", name.to_ascii_lowercase())
            } else {
                name.to_ascii_uppercase()
            };
            records[0].push(twin);
            for row in records.iter_mut().skip(1) {
                row.push("d".into());
            }
        }
        Fault::EmptyHeaderName(i) => {
            let at = i.index(records[0].len());
            records[0][at] = if at % 2 == 0 { String::new() } else { "  ".into() };
        }
        Fault::MissingKey => {
            for record in records.iter_mut() {
                record.remove(key_pos);
            }
            if records[0].is_empty() {
                records[0].push("name".into());
                for row in records.iter_mut().skip(1) {
                    row.push("n".into());
                }
            }
        }
        Fault::NoDataRows => {
            for row in records.iter_mut().skip(1) {
                row.iter_mut().for_each(String::clear);
            }
        }
        Fault::EmptyRow(i, extra) => {
            let width = (records[0].len() + extra).saturating_sub(1).max(1);
            records[1 + i.index(rows)] = vec![String::new(); width];
        }
    }
}

fn input_file() -> impl Strategy<Value = InputFile> {
    (
        good_file(),
        fault_strategy(),
        prop_oneof![Just(Eol::Lf), Just(Eol::Crlf), Just(Eol::Mixed)],
        prop_oneof![3 => Just(Quoting::Minimal), 1 => Just(Quoting::All), 1 => Just(Quoting::Alternate)],
        any::<bool>(),
        prop::option::weighted(0.15, any::<Index>()),
    )
        .prop_map(|(mut records, fault, eol, quoting, final_eol, blank)| {
            inject(&mut records, &fault);
            let blank_before = blank.map(|i| i.index(records.len() - 1));
            InputFile { records, eol, quoting, final_eol, blank_before }
        })
}

/// When runs happen: after every file, only after the last one, or after some.
#[derive(Debug, Clone)]
enum Runs {
    AllAtOnce,
    PerFile,
    /// A run after file i when the flag i is set (and always after the last file).
    After(Vec<bool>),
}

impl Runs {
    fn after(&self, i: usize, files: usize) -> bool {
        i + 1 == files
            || match self {
                Runs::AllAtOnce => false,
                Runs::PerFile => true,
                Runs::After(flags) => flags.get(i).copied().unwrap_or(false),
            }
    }
}

fn runs_strategy() -> impl Strategy<Value = Runs> {
    prop_oneof![
        Just(Runs::AllAtOnce),
        Just(Runs::PerFile),
        prop::collection::vec(any::<bool>(), 0..8).prop_map(Runs::After),
    ]
}

fn orders_strategy() -> impl Strategy<Value = Orders> {
    prop_oneof![
        3 => Just(Orders::DEFAULT),
        1 => (
            prop_oneof![Just(ColumnOrder::Sorted), Just(ColumnOrder::FirstSeen)],
            prop_oneof![Just(RowOrder::Arrival), Just(RowOrder::Key)],
        )
            .prop_map(|(columns, rows)| Orders { columns, rows }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Running both and comparing
// ---------------------------------------------------------------------------------------------

/// Drops the files into a sandbox, runs the binary as `runs` says, and checks the master CSV
/// and the exit status against the model after every run.
fn check(files: &[InputFile], runs: &Runs, orders: Orders) -> Result<(), TestCaseError> {
    let mut sandbox = orders.sandbox();
    let mut model = Model::default();
    let mut rejected_since_run = false;
    for (i, file) in files.iter().enumerate() {
        sandbox.drop_bytes(&format!("f{i:03}.csv"), &file.bytes());
        rejected_since_run |= !model.apply(&file.records);
        if !runs.after(i, files.len()) {
            continue;
        }
        let run = sandbox.run();
        let want_status = if rejected_since_run { 2 } else { 0 };
        rejected_since_run = false;
        prop_assert_eq!(run.status, want_status, "after file {}: {:?}", i, run);

        let actual = std::fs::read(sandbox.master()).ok().map(|b| String::from_utf8(b).unwrap());
        let expected = model.master(orders);
        prop_assert_eq!(actual, expected, "master CSV after file {} differs; {:?}", i, run);

        // The store itself: live catalog in first-seen order (key first), and the row count.
        let names: Vec<&str> = model.first_seen().iter().map(|c| c.name.as_str()).collect();
        prop_assert_eq!(sandbox.catalog(), names, "catalog after file {}", i);
        prop_assert_eq!(sandbox.row_count(), model.rows.len() as i64, "rows after file {}", i);
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Integration tests have no lib.rs beside them: name the regression file outright.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/property.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn binary_agrees_with_model(
        files in prop::collection::vec(input_file(), 1..=8),
        runs in runs_strategy(),
        orders in orders_strategy(),
    ) {
        check(&files, &runs, orders)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Named cases: the model itself, and failures found by the property kept as regressions
// ---------------------------------------------------------------------------------------------

fn file(records: &[&[&str]]) -> InputFile {
    InputFile {
        records: records.iter().map(|r| r.iter().map(|f| f.to_string()).collect()).collect(),
        eol: Eol::Lf,
        quoting: Quoting::Minimal,
        final_eol: true,
        blank_before: None,
    }
}

#[test]
fn model_matches_the_spec_example() {
    let mut model = Model::default();
    assert!(model.apply(
        &file(&[&["cluster_name", "cpu", "mem"], &["c1", "1", "10"], &["c2", "2", "20"]]).records
    ));
    assert!(model.apply(&file(&[&["cluster_name", "cpu"], &["c1", "5"]]).records));
    assert_eq!(model.master(Orders::DEFAULT).unwrap(), "cluster_name,cpu,mem\nc2,2,20\nc1,5,\n");
    assert!(model.apply(&file(&[&["cluster_name", "cpu"], &["c2", "6"]]).records));
    assert_eq!(model.master(Orders::DEFAULT).unwrap(), "cluster_name,cpu\nc1,5\nc2,6\n");
}

#[test]
fn encoded_files_quote_what_needs_it() {
    let mut f = file(&[&["cluster_name", "v"], &["a,b", "x\"y"], &["k", ""]]);
    f.eol = Eol::Crlf;
    f.final_eol = false;
    assert_eq!(f.bytes(), b"cluster_name,v\r\n\"a,b\",\"x\"\"y\"\r\nk,".to_vec());
    let one = file(&[&[""], &["k"]]);
    assert_eq!(one.bytes(), b"\"\"\nk\n".to_vec());
}

#[test]
fn dropped_column_comes_back_with_new_spelling_at_the_end() {
    let files = [
        file(&[&["cluster_name", "Cpu", "mem"], &["k1", "1", "2"]]),
        file(&[&["cluster_name", "mem"], &["k1", "3"]]),
        file(&[&["cluster_name", "CPU"], &["k2", "4"]]),
    ];
    let orders = Orders { columns: ColumnOrder::FirstSeen, rows: RowOrder::Arrival };
    check(&files, &Runs::PerFile, orders).unwrap();
    check(&files, &Runs::AllAtOnce, Orders::DEFAULT).unwrap();
}

#[test]
fn a_header_name_with_a_line_break_gets_a_records_view_column() {
    // Shrunk failure of the property: the `records` view template put the list of columns
    // into its comment as well, so a name holding a line break broke the view's SQL.
    let files = vec![InputFile {
        records: vec![
            vec!["cluster_name".into(), "multi\nline".into()],
            vec!["".into()],
            vec!["k1 ".into(), "lone\rcr".into()],
        ],
        eol: Eol::Lf,
        quoting: Quoting::Minimal,
        final_eol: true,
        blank_before: None,
    }];
    check(&files, &Runs::AllAtOnce, Orders::DEFAULT).unwrap();
}

#[test]
fn rejected_files_alone_create_no_master_csv() {
    let mut sandbox = Sandbox::new();
    // The property's shrunk failure (seed in property.proptest-regressions): one ragged file.
    sandbox.drop_bytes("f000.csv", b"cluster_name\nk1v,extra");
    let run = sandbox.run();
    assert_eq!(run.status, 2, "{run:?}");
    assert!(!sandbox.master().exists(), "master CSV written: {:?}", sandbox.master_text());
}

#[test]
fn a_first_run_on_an_empty_inbox_creates_no_master_csv() {
    let sandbox = Sandbox::new();
    let run = sandbox.run();
    assert_eq!(run.status, 0, "{run:?}");
    assert!(!sandbox.master().exists(), "master CSV written: {:?}", sandbox.master_text());
}
