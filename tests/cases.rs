//! The cases of `shared/cases/LOG.md`: inputs that broke other tools, each turned into a test of
//! what csv-watchdog must do with it, plus a near variant of the same kind of fault where one
//! makes sense. Shared inputs are read from `shared/cases/inputs`; the variants live in
//! `tests/data/`, named for the case they prove, or are built in code when they are large.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{Run, Sandbox, case_input, xxh128_hex};
use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A fixture of this test binary, from `tests/data/`.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn shared_bytes(name: &str) -> Vec<u8> {
    fs::read(case_input(name)).expect("shared case input")
}

fn data_bytes(name: &str) -> Vec<u8> {
    fs::read(data(name)).expect("fixture")
}

/// The file the reject cases run against, so that "store unchanged" has something to keep.
const SEED: &[u8] = b"cluster_name,region,nodes\nseed-01,eu,1\nseed-02,us,2\n";

/// A sandbox whose store already holds the seed file, and a snapshot of it.
fn seeded(config: Value) -> (Sandbox, Snapshot) {
    let mut sb = Sandbox::with_config(config);
    sb.drop_bytes("seed.csv", SEED);
    sb.run_expect(0);
    let before = snapshot(&sb);
    assert_eq!(before.records.len(), 2, "seed rows");
    (sb, before)
}

/// Everything a rejected file must leave untouched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    records: Vec<String>,
    catalog: Vec<String>,
    physical_columns: Vec<String>,
    applied: Vec<String>,
    master: Option<Vec<u8>>,
    metadata: Option<Vec<u8>>,
}

fn dump(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |row| {
        let cells: Vec<SqlValue> = (0..width).map(|i| row.get(i)).collect::<Result<_, _>>()?;
        Ok(format!("{cells:?}"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn snapshot(sb: &Sandbox) -> Snapshot {
    let db = sb.db();
    Snapshot {
        records: dump(&db, "SELECT * FROM record_data ORDER BY seq"),
        catalog: dump(&db, "SELECT * FROM catalog ORDER BY id"),
        physical_columns: dump(&db, "SELECT name, type FROM pragma_table_info('record_data')"),
        applied: dump(&db, "SELECT * FROM ledger WHERE status = 'applied' ORDER BY id"),
        master: fs::read(sb.master()).ok(),
        metadata: fs::read(sb.metadata()).ok(),
    }
}

/// `rest` looks like `YYYYmmddTHHMMSS.fff`, maybe followed by `.N`.
fn is_stamp(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.len() >= 19
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'.'
        && b[16..19].iter().all(u8::is_ascii_digit)
        && (b.len() == 19
            || (b[19] == b'.' && b.len() > 20 && b[20..].iter().all(u8::is_ascii_digit)))
}

/// Names in `dir` that are `name` with a time stamp appended (the moved file, not its JSON).
fn stamped(sb: &Sandbox, dir: &Path, name: &str) -> Vec<String> {
    let prefix = format!("{name}.");
    sb.names_in(dir).into_iter().filter(|n| n.strip_prefix(&prefix).is_some_and(is_stamp)).collect()
}

/// (status, checksum, rule, line, error) of every ledger row of `name`, oldest first.
type LedgerRow = (String, String, Option<String>, Option<i64>, Option<String>);

fn ledger_of(sb: &Sandbox, name: &str) -> Vec<LedgerRow> {
    let db = sb.db();
    let mut stmt = db
        .prepare(
            "SELECT status, checksum, rule, line, error FROM ledger WHERE name = ?1 ORDER BY id",
        )
        .unwrap();
    stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn ledger_count(sb: &Sandbox, name: &str, column: &str) -> i64 {
    sb.db()
        .query_row(
            &format!("SELECT {column} FROM ledger WHERE name = ?1 ORDER BY id DESC LIMIT 1"),
            [name],
            |r| r.get(0),
        )
        .unwrap()
}

/// The accept rules: the file is recorded as applied with the XXH3-128 of its raw bytes, moved
/// to the archive unchanged, and the master CSV and metadata agree with the store.
fn assert_applied(sb: &Sandbox, run: &Run, name: &str, bytes: &[u8]) {
    assert_eq!(run.status, 0, "{run:?}");
    let rows = ledger_of(sb, name);
    assert!(
        rows.iter().any(|r| r.0 == "applied" && r.1 == xxh128_hex(bytes)),
        "no applied ledger row with the raw-bytes checksum {} for {name}: {rows:?}",
        xxh128_hex(bytes)
    );
    assert!(!sb.inbox().join(name).exists(), "{name} still in the inbox");
    let archived = stamped(sb, &sb.archive(), name);
    assert!(
        archived.iter().any(|a| fs::read(sb.archive().join(a)).unwrap() == bytes),
        "{name} not archived unchanged: {archived:?}"
    );
    let metadata: Value = serde_json::from_slice(&fs::read(sb.metadata()).unwrap()).unwrap();
    assert_eq!(metadata["row_count"], json!(sb.row_count()), "metadata row_count");
    assert_eq!(
        metadata["merged_file_xxh3_128"],
        json!(xxh128_hex(&fs::read(sb.master()).unwrap())),
        "metadata checksum of the master CSV"
    );
    assert_eq!(master_rows(sb).len() as i64, sb.row_count() + 1, "master CSV rows");
}

/// The reject rules: exit 2, a message naming the file (and line), the store, catalog, master
/// CSV and metadata unchanged, no applied ledger row, the file in the rejected folder with its
/// reason JSON and not in the archive. Returns the ledger's error text.
fn assert_rejected(
    sb: &Sandbox,
    before: &Snapshot,
    run: &Run,
    name: &str,
    bytes: &[u8],
    rule: &str,
    line: Option<i64>,
) -> String {
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stderr.contains(&format!("csv-watchdog: rejected {name}")), "{run:?}");
    if let Some(line) = line {
        assert!(run.stderr.contains(&format!("{name}: line {line}")), "line {line}: {run:?}");
    }
    assert!(run.stderr.contains(&format!("[{rule}]")), "rule {rule}: {run:?}");
    assert!(!run.text().contains("panicked"), "{run:?}");
    assert_eq!(&snapshot(sb), before, "store, catalog, master CSV or metadata changed");

    let rows = ledger_of(sb, name);
    assert!(rows.iter().all(|r| r.0 != "applied"), "{rows:?}");
    let last = rows.last().expect("a rejection record");
    assert_eq!(last.0, "rejected");
    assert_eq!(last.1, xxh128_hex(bytes));
    assert_eq!(last.2.as_deref(), Some(rule));
    assert_eq!(last.3, line);
    let error = last.4.clone().expect("error text");
    assert!(error.contains(name), "{error}");

    assert!(!sb.inbox().join(name).exists(), "{name} still in the inbox");
    assert!(stamped(sb, &sb.archive(), name).is_empty(), "{name} archived as processed");
    let moved = stamped(sb, &sb.rejected(), name);
    assert_eq!(moved.len(), 1, "{:?}", sb.names_in(&sb.rejected()));
    assert_eq!(fs::read(sb.rejected().join(&moved[0])).unwrap(), bytes);
    let reason: Value = serde_json::from_slice(
        &fs::read(sb.rejected().join(format!("{}.json", moved[0]))).unwrap(),
    )
    .unwrap();
    assert_eq!(reason["file"], json!(name));
    assert_eq!(reason["rule"], json!(rule));
    assert_eq!(reason["line"], json!(line));
    error
}

/// Drops a fixture, runs, and checks the reject rules against a seeded store.
fn reject_case(
    path: &Path,
    name: &str,
    rule: &str,
    line: Option<i64>,
    config: Value,
) -> (Sandbox, String) {
    let (mut sb, before) = seeded(config);
    sb.drop_file(path, name);
    let run = sb.run();
    let error = assert_rejected(&sb, &before, &run, name, &fs::read(path).unwrap(), rule, line);
    (sb, error)
}

fn master_rows(sb: &Sandbox) -> Vec<Vec<String>> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).from_path(sb.master()).expect("master CSV");
    reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect()
}

/// The master-CSV cell of `column` in the row of `key`.
fn master_cell(sb: &Sandbox, key: &str, column: &str) -> Option<String> {
    let rows = master_rows(sb);
    let header = &rows[0];
    let key_name: String = sb
        .db()
        .query_row("SELECT name FROM catalog WHERE is_key = 1 AND dropped_by IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    let key_at = header.iter().position(|h| *h == key_name)?;
    let at = header.iter().position(|h| h == column)?;
    rows[1..].iter().find(|r| r[key_at] == key).map(|r| r[at].clone())
}

/// The master-CSV line (without its line end) whose first field is `key`.
fn master_line(sb: &Sandbox, key: &str) -> String {
    let prefix = format!("{key},");
    sb.master_text().lines().find(|l| l.starts_with(&prefix)).expect("master line").to_string()
}

/// Asserts the stored value and the master-CSV cell, byte for byte.
fn assert_value(sb: &Sandbox, key: &str, column: &str, expected: Option<&str>) {
    assert_eq!(sb.value(key, column).as_deref(), expected, "stored {key}.{column}");
    let cell = master_cell(sb, key, column);
    assert_eq!(cell.as_deref(), Some(expected.unwrap_or("")), "master CSV {key}.{column}");
}

/// Every catalog name ever recorded, dropped ones included.
fn all_catalog_names(sb: &Sandbox) -> Vec<String> {
    let db = sb.db();
    let mut stmt = db.prepare("SELECT name FROM catalog ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// A CSV with the key column, `names` as the other columns, and one row `key` where each cell
/// is `v-<column>`.
fn wide_file(names: &[String], key: &str) -> Vec<u8> {
    let mut text = String::from("cluster_name");
    for name in names {
        text.push(',');
        text.push_str(name);
    }
    text.push('\n');
    text.push_str(key);
    for name in names {
        text.push_str(&format!(",v-{name}"));
    }
    text.push('\n');
    text.into_bytes()
}

fn column_names(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:04}")).collect()
}

fn live_column_count(sb: &Sandbox) -> i64 {
    sb.db()
        .query_row("SELECT count(*) FROM catalog WHERE dropped_by IS NULL", [], |r| r.get(0))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// C01 — UTF-8 BOM in front of the header
// ---------------------------------------------------------------------------------------------

#[test]
fn accepts_bom_header_without_keeping_the_bom_in_column_names() {
    let mut sb = Sandbox::new();
    sb.drop_case("C01_bom_header.csv");
    let run = sb.run();
    let bytes = shared_bytes("C01_bom_header.csv");
    assert_applied(&sb, &run, "C01_bom_header.csv", &bytes);
    assert!(!run.text().contains("key column not found"), "{run:?}");

    assert_eq!(sb.catalog(), ["cluster_name", "region", "nodes"]);
    assert!(all_catalog_names(&sb).iter().all(|n| !n.contains('\u{feff}')));
    assert_value(&sb, "alpha-01", "region", Some("eu-west"));
    assert_value(&sb, "alpha-01", "nodes", Some("3"));
    assert_value(&sb, "beta-02", "nodes", Some("5"));

    let master = fs::read(sb.master()).unwrap();
    let bom_at: Vec<usize> = master
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == b"\xEF\xBB\xBF")
        .map(|(i, _)| i)
        .collect();
    assert!(bom_at.iter().all(|&i| i == 0), "BOM inside the master CSV at {bom_at:?}");
    assert!(!master.contains(&b'\r'), "a CR from the input reached the master CSV");
}

#[test]
fn accepts_bom_before_a_quoted_header_as_excel_and_powershell_write_it() {
    let mut sb = Sandbox::new();
    sb.drop_file(&data("C01_bom_quoted_header.csv"), "C01_bom_quoted_header.csv");
    let run = sb.run();
    assert_applied(
        &sb,
        &run,
        "C01_bom_quoted_header.csv",
        &data_bytes("C01_bom_quoted_header.csv"),
    );
    assert_eq!(sb.catalog(), ["cluster_name", "region", "nodes"]);
    assert_value(&sb, "q-01", "region", Some("eu-west"));
    assert_value(&sb, "q-02", "nodes", Some("5"));
}

#[test]
fn accepts_bom_followed_by_a_padded_key_header() {
    let mut sb = Sandbox::new();
    sb.drop_file(&data("C01_bom_padded_header.csv"), "C01_bom_padded_header.csv");
    let run = sb.run();
    assert_applied(
        &sb,
        &run,
        "C01_bom_padded_header.csv",
        &data_bytes("C01_bom_padded_header.csv"),
    );
    assert_eq!(sb.catalog(), ["cluster_name", "region"]);
    assert_value(&sb, "bp-01", "region", Some("eu"));
}

// ---------------------------------------------------------------------------------------------
// C02 — leading zeros
// ---------------------------------------------------------------------------------------------

#[test]
fn keeps_leading_zeros_and_tells_numeric_looking_keys_apart() {
    let mut sb = Sandbox::with_config(json!({"column_order": "first_seen"}));
    sb.drop_case("C02_leading_zeros.csv");
    let run = sb.run();
    assert_applied(&sb, &run, "C02_leading_zeros.csv", &shared_bytes("C02_leading_zeros.csv"));
    assert_eq!(sb.row_count(), 4);
    assert_value(&sb, "ACME-01", "zip", Some("00501"));
    assert_value(&sb, "ACME-01", "rack_code", Some("007"));
    assert_value(&sb, "ACME-01", "phone_ext", Some("0012"));
    assert_value(&sb, "ACME-02", "zip", Some("02116"));
    assert_value(&sb, "ACME-02", "rack_code", Some("0420"));
    assert_value(&sb, "0042", "zip", Some("10001"));
    assert_value(&sb, "0042", "phone_ext", Some("00"));
    assert_value(&sb, "42", "phone_ext", Some("000"));
    assert_eq!(master_line(&sb, "ACME-01"), "ACME-01,00501,007,0012");
}

#[test]
fn keeps_numeric_looking_values_byte_for_byte() {
    let mut sb = Sandbox::new();
    sb.drop_file(&data("C02_numeric_looking_text.csv"), "C02_numeric_looking_text.csv");
    let run = sb.run();
    let bytes = data_bytes("C02_numeric_looking_text.csv");
    assert_applied(&sb, &run, "C02_numeric_looking_text.csv", &bytes);
    for (key, value) in [
        ("v-01", "+007"),
        ("v-02", "1.500"),
        ("v-03", "-0"),
        ("v-04", "0x1F"),
        ("v-05", " 42 "),
        ("v-06", "1,000"),
        ("v-07", "1E5"),
        ("v-08", "007.0"),
    ] {
        assert_value(&sb, key, "value", Some(value));
    }
    let types = dump(&sb.db(), "SELECT DISTINCT typeof(value) FROM records");
    assert_eq!(types, [format!("{:?}", [SqlValue::Text("text".into())])]);
}

// ---------------------------------------------------------------------------------------------
// C03 — integers with blanks
// ---------------------------------------------------------------------------------------------

#[test]
fn keeps_integers_and_decimals_as_written_when_a_column_has_blanks() {
    let mut sb = Sandbox::with_config(json!({"column_order": "first_seen"}));
    sb.drop_case("C03_int_with_blanks.csv");
    let run = sb.run();
    assert_applied(&sb, &run, "C03_int_with_blanks.csv", &shared_bytes("C03_int_with_blanks.csv"));
    assert_eq!(sb.row_count(), 3);
    assert_value(&sb, "c-a", "replicas", Some("1"));
    assert_value(&sb, "c-a", "price", Some("2.50"));
    assert_value(&sb, "c-b", "replicas", None);
    assert_value(&sb, "c-b", "price", Some("1.0"));
    assert_value(&sb, "c-c", "cpu", None);
    assert_value(&sb, "c-c", "price", Some("1e3"));
    assert_eq!(master_line(&sb, "c-a"), "c-a,1,2,2.50");
    assert_eq!(master_line(&sb, "c-b"), "c-b,,4,1.0");
}

#[test]
fn writes_quoted_empty_cells_back_as_empty_fields() {
    let mut sb = Sandbox::with_config(json!({"column_order": "first_seen"}));
    sb.drop_file(&data("C03_quoted_empty_cells.csv"), "C03_quoted_empty_cells.csv");
    let run = sb.run();
    assert_applied(
        &sb,
        &run,
        "C03_quoted_empty_cells.csv",
        &data_bytes("C03_quoted_empty_cells.csv"),
    );
    assert_value(&sb, "q-a", "replicas", None);
    assert_value(&sb, "q-a", "price", Some("1.0"));
    assert_value(&sb, "q-b", "replicas", Some("2"));
    assert_value(&sb, "q-b", "price", None);
    assert_eq!(master_line(&sb, "q-a"), "q-a,,1.0");
    assert_eq!(master_line(&sb, "q-b"), "q-b,2,");
}

// ---------------------------------------------------------------------------------------------
// C05 — "NA" / "null" strings
// ---------------------------------------------------------------------------------------------

#[test]
fn keeps_na_and_null_strings_as_text() {
    let mut sb = Sandbox::new();
    sb.drop_case("C05_na_null_strings.csv");
    let run = sb.run();
    assert_applied(&sb, &run, "C05_na_null_strings.csv", &shared_bytes("C05_na_null_strings.csv"));
    assert_eq!(sb.row_count(), 3);
    assert_value(&sb, "na-01", "country", Some("NA"));
    assert_value(&sb, "na-01", "owner", Some("null"));
    assert_value(&sb, "na-01", "note", Some("N/A"));
    assert_value(&sb, "na-01", "flag", Some("FALSE"));
    assert_value(&sb, "na-02", "owner", Some("None"));
    assert_value(&sb, "na-02", "note", Some("nan"));
    assert_value(&sb, "na-02", "flag", Some("-"));
    assert_value(&sb, "NULL", "owner", Some("NULL"));
    assert_value(&sb, "NULL", "note", Some("#N/A"));
    assert_value(&sb, "NULL", "flag", Some("TRUE"));
    let nulls: i64 = sb
        .db()
        .query_row("SELECT count(*) FROM records WHERE country IS NULL OR owner IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(nulls, 0);
}

#[test]
fn accepts_na_spellings_as_distinct_keys() {
    let mut sb = Sandbox::new();
    sb.drop_file(&data("C05_na_spellings_as_keys.csv"), "C05_na_spellings_as_keys.csv");
    let run = sb.run();
    assert_applied(
        &sb,
        &run,
        "C05_na_spellings_as_keys.csv",
        &data_bytes("C05_na_spellings_as_keys.csv"),
    );
    assert_eq!(sb.row_count(), 6);
    for (key, v) in
        [("NA", "1"), ("null", "2"), ("None", "3"), ("nan", "4"), ("#N/A", "5"), ("N/A", "6")]
    {
        assert_value(&sb, key, "v", Some(v));
    }
}

// ---------------------------------------------------------------------------------------------
// C06 — duplicate header names
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_duplicate_header_naming_line_and_both_positions() {
    let name = "C06_duplicate_headers.csv";
    let (sb, error) =
        reject_case(&case_input(name), name, "duplicate_header_name", Some(1), json!({}));
    assert!(error.contains("\"ip\" (column 2) and \"ip\" (column 3)"), "{error}");
    assert!(!all_catalog_names(&sb).iter().any(|n| n.eq_ignore_ascii_case("ip")));
}

#[test]
fn rejects_header_names_that_repeat_only_after_trimming() {
    let name = "C06_duplicate_after_trim.csv";
    let (sb, error) = reject_case(&data(name), name, "duplicate_header_name", Some(1), json!({}));
    assert!(error.contains("(column 2)") && error.contains("(column 3)"), "{error}");
    assert!(!all_catalog_names(&sb).iter().any(|n| n.trim().eq_ignore_ascii_case("ip")));
}

// ---------------------------------------------------------------------------------------------
// C07 — column names differing only in letter case
// ---------------------------------------------------------------------------------------------

#[test]
fn matches_header_names_to_the_catalog_ignoring_case_keeping_first_spelling() {
    let mut sb = Sandbox::new();
    sb.drop_case("C07_case_a.csv");
    sb.drop_case("C07_case_b.csv");
    let run = sb.run();
    assert!(!run.text().contains("duplicate column name"), "{run:?}");
    assert_applied(&sb, &run, "C07_case_a.csv", &shared_bytes("C07_case_a.csv"));
    assert_applied(&sb, &run, "C07_case_b.csv", &shared_bytes("C07_case_b.csv"));
    assert_eq!(sb.catalog(), ["cluster_name", "Tags", "Owner"]);
    assert_value(&sb, "m-01", "Tags", Some("green"));
    assert_value(&sb, "m-01", "Owner", Some("ops"));
    assert_value(&sb, "m-02", "Tags", Some("blue"));
    assert_value(&sb, "m-02", "Owner", Some("dev"));
}

#[test]
fn matches_a_key_header_in_another_case_to_the_same_key_column() {
    let mut sb = Sandbox::new();
    sb.drop_case("C07_case_a.csv");
    sb.run_expect(0);
    sb.drop_file(&data("C07_case_key_in_later_file.csv"), "C07_case_key_in_later_file.csv");
    let run = sb.run();
    let bytes = data_bytes("C07_case_key_in_later_file.csv");
    assert_applied(&sb, &run, "C07_case_key_in_later_file.csv", &bytes);
    assert_eq!(sb.catalog(), ["cluster_name", "Tags", "Owner"]);
    assert_value(&sb, "m-09", "Tags", Some("yellow"));
    assert_value(&sb, "m-01", "Tags", Some("red"));
}

#[test]
fn rejects_header_names_differing_only_in_case_within_one_file() {
    let name = "C07_case_dup_in_file.csv";
    let (sb, error) =
        reject_case(&case_input(name), name, "duplicate_header_name", Some(1), json!({}));
    assert!(error.contains("\"Env\"") && error.contains("\"env\""), "{error}");
    assert!(!all_catalog_names(&sb).iter().any(|n| n.eq_ignore_ascii_case("env")));
}

#[test]
fn rejects_header_names_equal_only_after_trimming_and_case_folding() {
    let name = "C07_case_dup_after_trim.csv";
    let (sb, error) = reject_case(&data(name), name, "duplicate_header_name", Some(1), json!({}));
    assert!(error.contains("\"ENV\"") && error.contains("\"env\""), "{error}");
    assert!(!all_catalog_names(&sb).iter().any(|n| n.eq_ignore_ascii_case("env")));
}

// ---------------------------------------------------------------------------------------------
// C08 — header names with surrounding spaces
// ---------------------------------------------------------------------------------------------

#[test]
fn trims_header_names_but_not_data_values() {
    let mut sb = Sandbox::new();
    sb.drop_case("C08_padded_headers.csv");
    let run = sb.run();
    assert_applied(&sb, &run, "C08_padded_headers.csv", &shared_bytes("C08_padded_headers.csv"));
    assert_eq!(sb.row_count(), 2);
    assert_eq!(sb.catalog(), ["cluster_name", "region", "label"]);
    assert_value(&sb, "pd-01", "label", Some("  keep me  "));
    assert_eq!(sb.value("pd-01", "label").unwrap().len(), 11);
    assert_value(&sb, "pd-01", "region", Some("eu"));
    assert_value(&sb, "pd-02", "label", Some("x"));
}

#[test]
fn trims_tabs_around_header_names_and_keeps_quoted_padding_in_values() {
    let mut sb = Sandbox::new();
    sb.drop_file(&data("C08_tab_padded_header.csv"), "C08_tab_padded_header.csv");
    let run = sb.run();
    assert_applied(
        &sb,
        &run,
        "C08_tab_padded_header.csv",
        &data_bytes("C08_tab_padded_header.csv"),
    );
    assert_eq!(sb.catalog(), ["cluster_name", "region", "label"]);
    assert_value(&sb, "pd-03", "label", Some("  quoted pad  "));
}

// ---------------------------------------------------------------------------------------------
// C10 — SQL keywords and rowid aliases as column names
// ---------------------------------------------------------------------------------------------

#[test]
fn keeps_sql_keyword_and_rowid_column_names_verbatim() {
    let mut sb = Sandbox::new();
    sb.drop_case("C10_sql_keyword_headers.csv");
    let run = sb.run();
    let bytes = shared_bytes("C10_sql_keyword_headers.csv");
    assert_applied(&sb, &run, "C10_sql_keyword_headers.csv", &bytes);
    assert_eq!(sb.row_count(), 2);
    assert_eq!(
        sb.catalog(),
        [
            "cluster_name",
            "order",
            "group",
            "select",
            "from",
            "where",
            "index",
            "table",
            "null",
            "rowid",
            "oid"
        ]
    );
    assert_value(&sb, "kw-01", "order", Some("o1"));
    assert_value(&sb, "kw-01", "group", Some("g1"));
    assert_value(&sb, "kw-01", "null", Some("n1"));
    assert_value(&sb, "kw-01", "rowid", Some("r1"));
    assert_value(&sb, "kw-01", "oid", Some("x1"));
    assert_value(&sb, "kw-02", "rowid", Some("r2"));
    let types = dump(
        &sb.db(),
        "SELECT typeof(\"rowid\"), typeof(\"oid\") FROM records ORDER BY \"cluster_name\"",
    );
    let text = SqlValue::Text("text".into());
    assert_eq!(types, vec![format!("{:?}", [text.clone(), text.clone()]); 2]);
}

#[test]
fn keeps_columns_named_like_the_store_bookkeeping_apart() {
    let mut sb = Sandbox::new();
    sb.drop_file(&data("C10_bookkeeping_names.csv"), "C10_bookkeeping_names.csv");
    let run = sb.run();
    assert_applied(
        &sb,
        &run,
        "C10_bookkeeping_names.csv",
        &data_bytes("C10_bookkeeping_names.csv"),
    );
    assert_eq!(sb.catalog(), ["cluster_name", "seq", "key", "file_id", "line", "c1", "c2", "a\"b"]);
    for (column, v1, v2) in [
        ("seq", "s1", "s2"),
        ("key", "k1", "k2"),
        ("file_id", "f1", "f2"),
        ("line", "l1", "l2"),
        ("c1", "x1", "y1"),
        ("c2", "x2", "y2"),
        ("a\"b", "q1", "q2"),
    ] {
        assert_value(&sb, "bk-01", column, Some(v1));
        assert_value(&sb, "bk-02", column, Some(v2));
    }
}

// ---------------------------------------------------------------------------------------------
// C11 / C22 — header-only file, zero-byte file, files still being written
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_header_only_file_without_adding_its_columns() {
    let name = "C11_header_only.csv";
    let (sb, error) = reject_case(&case_input(name), name, "no_data_rows", None, json!({}));
    assert!(error.contains("no data rows"), "{error}");
    assert!(!all_catalog_names(&sb).iter().any(|n| n == "brand_new_col"));
    assert_eq!(sb.value("seed-01", "region").as_deref(), Some("eu"));
}

#[test]
fn rejects_header_followed_only_by_blank_and_empty_rows_as_no_data_rows() {
    let name = "C11_header_and_blank_rows_only.csv";
    let (sb, error) = reject_case(&data(name), name, "no_data_rows", None, json!({}));
    assert!(error.contains("no data rows"), "{error}");
    assert!(!all_catalog_names(&sb).iter().any(|n| n == "brand_new_col"));
}

#[test]
fn rejects_stable_zero_byte_file_as_empty_only_after_the_stability_window() {
    let (mut sb, before) = seeded(json!({"checksum_wait_seconds": 1}));
    let name = "C11_zero_bytes.csv";
    sb.drop_case(name);
    let started = Instant::now();
    let run = sb.run();
    assert!(started.elapsed() >= Duration::from_secs(1), "rejected before the stability window");
    let error = assert_rejected(&sb, &before, &run, name, b"", "empty_file", None);
    assert!(error.contains("empty file"), "{error}");
}

/// Appends a row every 100 ms to `path` until `stop` is set; returns the rows written.
fn keep_writing(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        file.write_all(b"cluster_name,region\n").unwrap();
        let mut rows = 0;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            writeln!(file, "g-{rows:04},eu").unwrap();
            rows += 1;
        }
        rows
    })
}

#[test]
fn leaves_a_zero_byte_file_still_being_written_waiting_then_applies_it() {
    let mut sb = Sandbox::with_config(json!({"checksum_wait_seconds": 1.5}));
    let path = sb.drop_bytes("growing.csv", b"");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = keep_writing(path.clone(), Arc::clone(&stop));
    let run = sb.run();
    stop.store(true, Ordering::SeqCst);
    let rows = writer.join().unwrap();

    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("waiting   growing.csv"), "{run:?}");
    assert!(!run.stderr.contains("rejected"), "{run:?}");
    assert!(path.exists(), "the file being written was moved");
    assert!(sb.names_in(&sb.rejected()).is_empty());
    assert!(ledger_of(&sb, "growing.csv").is_empty());

    let complete = fs::read(&path).unwrap();
    let run = sb.run();
    assert_applied(&sb, &run, "growing.csv", &complete);
    assert_eq!(sb.row_count(), rows as i64);
}

// ---------------------------------------------------------------------------------------------
// C12 — ragged rows
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_row_with_too_many_fields_naming_line_and_counts() {
    let name = "C12_ragged_too_many.csv";
    let (sb, error) = reject_case(&case_input(name), name, "ragged_row", Some(3), json!({}));
    assert!(error.contains("expected 3 fields") && error.contains("found 4"), "{error}");
    assert_eq!(sb.value("r-01", "region"), None);
}

#[test]
fn rejects_row_with_too_few_fields_naming_line_and_counts() {
    let name = "C12_ragged_too_few.csv";
    let (sb, error) = reject_case(&case_input(name), name, "ragged_row", Some(4), json!({}));
    assert!(error.contains("expected 3 fields") && error.contains("found 2"), "{error}");
    assert_eq!(sb.value("r-11", "region"), None);
    assert_eq!(sb.value("r-12", "region"), None);
}

#[test]
fn rejects_ragged_row_in_a_cr_only_file_naming_its_line() {
    let name = "C12_ragged_cr_only.csv";
    let (_, error) = reject_case(&data(name), name, "ragged_row", Some(3), json!({}));
    assert!(error.contains("expected 3 fields") && error.contains("found 4"), "{error}");
}

#[test]
fn rejects_ragged_row_after_a_multi_line_quoted_field_naming_its_physical_line() {
    let name = "C12_ragged_after_multiline_quoted.csv";
    let (_, error) = reject_case(&data(name), name, "ragged_row", Some(4), json!({}));
    assert!(error.contains("found 2"), "{error}");

    let name = "C12_ragged_after_crlf_multiline.csv";
    let (_, error) = reject_case(&data(name), name, "ragged_row", Some(6), json!({}));
    assert!(error.contains("found 2"), "{error}");
}

/// A file whose first data row is padded so that the line break after it sits across the
/// 64 KiB read boundary (a CR at byte 65535), followed by a good row and a ragged one.
fn line_break_across_read_boundary(line_end: &[u8]) -> Vec<u8> {
    let mut bytes = b"cluster_name,pad".to_vec();
    bytes.extend_from_slice(line_end);
    bytes.extend_from_slice(b"p-1,");
    let pad = 65535 - bytes.len();
    bytes.extend(std::iter::repeat_n(b'x', pad));
    assert_eq!(bytes.len(), 65535);
    bytes.extend_from_slice(line_end);
    for row in [&b"p-2,a"[..], b"p-3"] {
        bytes.extend_from_slice(row);
        bytes.extend_from_slice(line_end);
    }
    bytes
}

#[test]
fn rejects_ragged_row_after_a_line_break_split_across_a_read_boundary() {
    for (label, line_end) in [("crlf", &b"\r\n"[..]), ("cr", b"\r")] {
        let bytes = line_break_across_read_boundary(line_end);
        assert_eq!(bytes[65535], b'\r');
        let (mut sb, before) = seeded(json!({}));
        let name = format!("C12_ragged_after_split_{label}.csv");
        sb.drop_bytes(&name, &bytes);
        let run = sb.run();
        let error = assert_rejected(&sb, &before, &run, &name, &bytes, "ragged_row", Some(4));
        assert!(error.contains("found 1"), "{error}");
    }
}

// ---------------------------------------------------------------------------------------------
// C13 — trailing blank lines and all-empty rows
// ---------------------------------------------------------------------------------------------

#[test]
fn skips_trailing_blank_lines_and_all_empty_rows() {
    let mut sb = Sandbox::new();
    sb.drop_case("C13_trailing_blank_rows.csv");
    let run = sb.run();
    let bytes = shared_bytes("C13_trailing_blank_rows.csv");
    assert_applied(&sb, &run, "C13_trailing_blank_rows.csv", &bytes);
    assert_eq!(sb.row_count(), 2);
    let keys = dump(&sb.db(), "SELECT key FROM record_data ORDER BY key");
    assert_eq!(
        keys,
        [
            format!("{:?}", [SqlValue::Text("t-01".into())]),
            format!("{:?}", [SqlValue::Text("t-02".into())])
        ]
    );
    assert_value(&sb, "t-02", "nodes", Some("2"));
    assert!(!sb.master_text().contains('\r'));
}

#[test]
fn skips_blank_and_all_empty_rows_between_data_rows() {
    let mut sb = Sandbox::new();
    sb.drop_file(&data("C13_blank_rows_between_data.csv"), "C13_blank_rows_between_data.csv");
    let run = sb.run();
    let bytes = data_bytes("C13_blank_rows_between_data.csv");
    assert_applied(&sb, &run, "C13_blank_rows_between_data.csv", &bytes);
    assert_eq!(sb.row_count(), 2);
    assert_value(&sb, "t-21", "nodes", Some("1"));
    assert_value(&sb, "t-22", "nodes", Some("2"));
}

#[test]
fn rejects_empty_key_with_other_fields_set_naming_its_line() {
    let name = "C13_empty_key_with_fields.csv";
    let (sb, error) = reject_case(&data(name), name, "empty_key", Some(3), json!({}));
    assert!(error.contains("column 1 (cluster_name)"), "{error}");
    assert_eq!(sb.value("t-01", "region"), None);
}

#[test]
fn counts_skipped_blank_lines_when_naming_a_later_bad_line() {
    let name = "C13_blank_rows_cr_only_then_ragged.csv";
    let (_, error) = reject_case(&data(name), name, "ragged_row", Some(5), json!({}));
    assert!(error.contains("found 2"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// C16 — semicolon-delimited file
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_semicolon_file_read_with_commas_showing_the_header_as_read() {
    let name = "C16_semicolon_delimited.csv";
    let (sb, error) =
        reject_case(&case_input(name), name, "missing_key_column", Some(1), json!({}));
    assert!(error.contains("key column \"cluster_name\" not found"), "{error}");
    assert!(error.contains("\"cluster_name;region;capacity\""), "{error}");
    assert!(all_catalog_names(&sb).iter().all(|n| !n.contains(';')));
}

#[test]
fn accepts_semicolon_file_with_semicolon_delimiter_keeping_decimal_commas() {
    let mut sb = Sandbox::with_config(json!({"csv_delimiter": ";"}));
    sb.drop_case("C16_semicolon_delimited.csv");
    let run = sb.run();
    let bytes = shared_bytes("C16_semicolon_delimited.csv");
    assert_applied(&sb, &run, "C16_semicolon_delimited.csv", &bytes);
    assert_eq!(sb.row_count(), 2);
    assert_eq!(sb.catalog(), ["cluster_name", "region", "capacity"]);
    assert_value(&sb, "sc-01", "capacity", Some("12,5"));
    assert_value(&sb, "sc-02", "capacity", Some("7,0"));
}

// ---------------------------------------------------------------------------------------------
// C17 — Windows-1252 bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_windows1252_bytes_naming_line_and_byte_offset() {
    let name = "C17_windows1252.csv";
    assert_eq!(shared_bytes(name)[48], 0xE9);
    let (sb, error) = reject_case(&case_input(name), name, "encoding", Some(3), json!({}));
    assert!(error.contains("UTF-8") && error.contains("byte offset 48"), "{error}");
    assert_eq!(sb.value("lat-01", "site"), None);
}

#[test]
fn refuses_a_windows1252_encoding_setting_as_a_config_error() {
    let mut sb = Sandbox::with_config(json!({"csv_encoding": "windows-1252"}));
    sb.drop_case("C17_windows1252.csv");
    let run = sb.run_expect(1);
    assert!(run.stderr.contains("config error"), "{run:?}");
    assert!(run.stderr.contains("csv_encoding") && run.stderr.contains("windows-1252"), "{run:?}");
    assert!(sb.inbox().join("C17_windows1252.csv").exists());
    assert!(!sb.store_path().exists(), "a store was created despite the config error");
}

#[test]
fn rejects_invalid_utf8_in_the_header_naming_line_1() {
    let name = "C17_invalid_utf8_in_header.csv";
    let (sb, error) = reject_case(&data(name), name, "encoding", Some(1), json!({}));
    assert!(error.contains("byte offset 16"), "{error}");
    assert!(all_catalog_names(&sb).iter().all(|n| !n.starts_with("caf")));
}

#[test]
fn rejects_invalid_utf8_after_a_multi_line_record_naming_its_physical_line() {
    let name = "C17_invalid_utf8_after_multiline.csv";
    let at = data_bytes(name).iter().position(|&b| b == 0xE9).unwrap();
    let (_, error) = reject_case(&data(name), name, "encoding", Some(4), json!({}));
    assert!(error.contains(&format!("byte offset {at}")), "{error}");
}

/// LOG.md: "For a record that spans several physical lines, it is the line where the record
/// starts." The bad byte here is on physical line 3, inside a record that starts on line 2.
#[test]
fn rejects_invalid_utf8_inside_a_multi_line_field_naming_the_record_start_line() {
    let name = "C17_invalid_utf8_inside_multiline_field.csv";
    let at = data_bytes(name).iter().position(|&b| b == 0xE9).unwrap();
    let (_, error) = reject_case(&data(name), name, "encoding", Some(2), json!({}));
    assert!(error.contains(&format!("byte offset {at}")), "{error}");
}

/// `cluster_name,payload` with one row whose payload starts at byte 26, then `u-02,short`.
fn payload_file(payload: &[u8]) -> Vec<u8> {
    let mut bytes = b"cluster_name,payload\nu-01,".to_vec();
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(b"\nu-02,short\n");
    bytes
}

#[test]
fn accepts_multi_byte_characters_split_across_read_boundaries() {
    let payload = "€".repeat(30_000);
    let bytes = payload_file(payload.as_bytes());
    let mut sb = Sandbox::new();
    sb.drop_bytes("C17_utf8_across_boundary.csv", &bytes);
    let run = sb.run();
    assert_applied(&sb, &run, "C17_utf8_across_boundary.csv", &bytes);
    assert_value(&sb, "u-01", "payload", Some(&payload));
    assert_value(&sb, "u-02", "payload", Some("short"));
}

#[test]
fn rejects_invalid_utf8_split_across_a_read_boundary_naming_its_offset() {
    let mut payload = vec![b'a'; 65534 - 26];
    payload.extend_from_slice(b"\xE2\x82A");
    let bytes = payload_file(&payload);
    assert_eq!(&bytes[65534..65537], b"\xE2\x82A");
    let (mut sb, before) = seeded(json!({}));
    let name = "C17_invalid_utf8_across_boundary.csv";
    sb.drop_bytes(name, &bytes);
    let run = sb.run();
    let error = assert_rejected(&sb, &before, &run, name, &bytes, "encoding", Some(2));
    assert!(error.contains("byte offset 65534"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// C18 — NUL bytes and UTF-16
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_nul_byte_naming_its_line() {
    let name = "C18_nul_byte.csv";
    assert_eq!(shared_bytes(name)[39], 0);
    let (sb, error) = reject_case(&case_input(name), name, "nul_byte", Some(3), json!({}));
    assert!(error.contains("NUL") && error.contains("0x00"), "{error}");
    assert_eq!(sb.value("n-01", "comment"), None);
}

#[test]
fn rejects_nul_byte_deep_in_a_large_file_naming_its_line_and_storing_nothing() {
    let mut text = String::from("cluster_name,comment\n");
    for i in 2..=6000 {
        if i == 4321 {
            text.push_str(&format!("n-{i:05},bad\0tail\n"));
        } else {
            text.push_str(&format!("n-{i:05},fine and rather long comment text\n"));
        }
    }
    let bytes = text.into_bytes();
    let (mut sb, before) = seeded(json!({}));
    let name = "C18_nul_deep.csv";
    sb.drop_bytes(name, &bytes);
    let run = sb.run();
    let error = assert_rejected(&sb, &before, &run, name, &bytes, "nul_byte", Some(4321));
    assert!(error.contains("0x00"), "{error}");
    assert_eq!(sb.value("n-00002", "comment"), None);
}

#[test]
fn rejects_nul_byte_in_the_header_without_creating_a_column() {
    let name = "C18_nul_in_header.csv";
    let (sb, error) = reject_case(&data(name), name, "nul_byte", Some(1), json!({}));
    assert!(error.contains("0x00"), "{error}");
    assert!(all_catalog_names(&sb).iter().all(|n| !n.contains('\0')));
}

/// As for invalid UTF-8: the line of a record spanning several lines is its first line.
#[test]
fn rejects_nul_byte_inside_a_multi_line_field_naming_the_record_start_line() {
    let name = "C18_nul_inside_multiline_field.csv";
    let (sb, error) = reject_case(&data(name), name, "nul_byte", Some(2), json!({}));
    assert!(error.contains("0x00"), "{error}");
    assert_eq!(sb.value("l-01", "note"), None);
}

#[test]
fn rejects_utf16le_file_saying_utf16() {
    let name = "C18_utf16le.csv";
    let (sb, error) = reject_case(&case_input(name), name, "encoding", Some(1), json!({}));
    assert!(error.contains("UTF-16"), "{error}");
    assert!(all_catalog_names(&sb).iter().all(|n| !n.contains('\0')));
}

#[test]
fn rejects_utf16be_file_saying_utf16() {
    let name = "C18_utf16be.csv";
    let (sb, error) = reject_case(&data(name), name, "encoding", Some(1), json!({}));
    assert!(error.contains("UTF-16"), "{error}");
    assert!(all_catalog_names(&sb).iter().all(|n| !n.contains('\0')));
}

// ---------------------------------------------------------------------------------------------
// C19 — very long field
// ---------------------------------------------------------------------------------------------

#[test]
fn accepts_a_200000_character_field_and_round_trips_it() {
    let name = "C19_long_field.csv";
    let bytes = shared_bytes(name);
    assert_eq!(bytes.len(), 200_053);
    let mut sb = Sandbox::new();
    sb.drop_case(name);
    let run = sb.run();
    assert_applied(&sb, &run, name, &bytes);
    assert_eq!(sb.row_count(), 2);
    let (length, head): (i64, String) = sb
        .db()
        .query_row(
            "SELECT length(payload), substr(payload, 1, 16) FROM records
             WHERE cluster_name = 'lf-01'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((length, head.as_str()), (200_000, "0123456789abcdef"));
    assert_value(&sb, "lf-01", "payload", Some(&"0123456789abcdef".repeat(12_500)));
    assert_value(&sb, "lf-01", "tail", Some("end"));
    assert_value(&sb, "lf-02", "payload", Some("short"));
    assert_value(&sb, "lf-02", "tail", Some("end"));
}

#[test]
fn rejects_file_over_a_fractional_size_limit_naming_size_and_limit() {
    let name = "C19_long_field.csv";
    let config = json!({"max_file_size_mb": 0.095367431640625});
    let (_, error) = reject_case(&case_input(name), name, "too_large", None, config);
    assert!(error.contains("200053 bytes") && error.contains("100000"), "{error}");
}

#[test]
fn accepts_a_file_exactly_at_the_size_limit() {
    let mut bytes = b"cluster_name,payload\nlim-01,".to_vec();
    bytes.extend(std::iter::repeat_n(b'z', 100_000 - bytes.len() - 1));
    bytes.push(b'\n');
    assert_eq!(bytes.len(), 100_000);
    let mut sb = Sandbox::with_config(json!({"max_file_size_mb": 0.095367431640625}));
    sb.drop_bytes("C19_exactly_at_limit.csv", &bytes);
    let run = sb.run();
    assert_applied(&sb, &run, "C19_exactly_at_limit.csv", &bytes);

    bytes.insert(0, b'\n');
    let (mut sb, before) = seeded(json!({"max_file_size_mb": 0.095367431640625}));
    sb.drop_bytes("C19_one_byte_over.csv", &bytes);
    let run = sb.run();
    let error =
        assert_rejected(&sb, &before, &run, "C19_one_byte_over.csv", &bytes, "too_large", None);
    assert!(error.contains("100001 bytes"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// C20 — more columns than SQLite allows
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_2101_columns_before_altering_the_store() {
    let name = "C20_wide_2101_columns.csv";
    let (sb, error) = reject_case(&case_input(name), name, "too_many_columns", Some(1), json!({}));
    assert!(error.contains("2101 columns"), "{error}");
    assert!(error.contains("limit of 1997") && error.contains("2000"), "{error}");
    assert_eq!(live_column_count(&sb), 3);
}

#[test]
fn rejects_new_columns_that_would_take_the_store_past_its_column_limit() {
    let mut sb = Sandbox::new();
    let base = wide_file(&column_names("a", 1..=1994), "w-00");
    sb.drop_bytes("C20_base_1995.csv", &base);
    let run = sb.run();
    assert_applied(&sb, &run, "C20_base_1995.csv", &base);
    assert_eq!(live_column_count(&sb), 1995);

    // 1995 + 10 new = 2005: refused, nothing altered.
    let before = snapshot(&sb);
    let ten = wide_file(&column_names("b", 1..=10), "w-01");
    sb.drop_bytes("C20_ten_more.csv", &ten);
    let run = sb.run();
    let error =
        assert_rejected(&sb, &before, &run, "C20_ten_more.csv", &ten, "too_many_columns", Some(1));
    assert!(error.contains("1995") && error.contains("limit of 1997"), "{error}");
    assert_eq!(live_column_count(&sb), 1995);

    // Up to the limit exactly is fine, and the new values read back.
    let two = wide_file(&column_names("b", 1..=2), "w-02");
    sb.drop_bytes("C20_two_more.csv", &two);
    let run = sb.run();
    assert_applied(&sb, &run, "C20_two_more.csv", &two);
    assert_eq!(live_column_count(&sb), 1997);
    assert_value(&sb, "w-02", "b0002", Some("v-b0002"));
    assert_value(&sb, "w-00", "a1994", Some("v-a1994"));

    // One more is over.
    let before = snapshot(&sb);
    let one = wide_file(&column_names("b", 3..=3), "w-03");
    sb.drop_bytes("C20_one_more.csv", &one);
    let run = sb.run();
    assert_rejected(&sb, &before, &run, "C20_one_more.csv", &one, "too_many_columns", Some(1));
}

// ---------------------------------------------------------------------------------------------
// C21 — the same key twice in one file
// ---------------------------------------------------------------------------------------------

#[test]
fn last_row_wins_for_a_repeated_key_and_the_run_reports_its_lines() {
    let mut sb = Sandbox::new();
    sb.drop_case("C21_duplicate_keys.csv");
    let run = sb.run();
    assert_applied(&sb, &run, "C21_duplicate_keys.csv", &shared_bytes("C21_duplicate_keys.csv"));
    assert!(!run.text().to_lowercase().contains("constraint"), "{run:?}");
    assert_eq!(sb.row_count(), 3);
    assert_value(&sb, "dup-01", "region", Some("ap"));
    assert_value(&sb, "dup-01", "nodes", Some("3"));
    assert_value(&sb, "DUP-01", "region", Some("sa"));
    assert_value(&sb, "DUP-01", "nodes", Some("4"));
    assert_value(&sb, "dup-02", "nodes", Some("2"));
    assert!(run.text().contains("dup-01 (lines 2 and 4)"), "{run:?}");
    assert_eq!(ledger_count(&sb, "C21_duplicate_keys.csv", "duplicate_keys"), 1);
}

#[test]
fn last_row_wins_for_a_key_repeated_three_times_or_already_stored() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("seed.csv", SEED);
    sb.drop_file(&data("C21_key_repeated_three_times.csv"), "C21_key_repeated_three_times.csv");
    sb.drop_file(
        &data("C21_repeated_key_already_stored.csv"),
        "C21_repeated_key_already_stored.csv",
    );
    let run = sb.run();
    let three = data_bytes("C21_key_repeated_three_times.csv");
    let stored = data_bytes("C21_repeated_key_already_stored.csv");
    assert_applied(&sb, &run, "C21_key_repeated_three_times.csv", &three);
    assert_applied(&sb, &run, "C21_repeated_key_already_stored.csv", &stored);
    assert_eq!(sb.row_count(), 4);
    assert_value(&sb, "r-1", "region", Some("d"));
    assert_value(&sb, "r-2", "region", Some("b"));
    assert_value(&sb, "seed-01", "region", Some("y"));
    assert_value(&sb, "seed-01", "nodes", Some("8"));
    assert!(run.text().contains("r-1 (lines 2 and 4)"), "{run:?}");
    assert!(run.text().contains("seed-01 (lines 2 and 3)"), "{run:?}");
    assert_eq!(ledger_count(&sb, "C21_key_repeated_three_times.csv", "duplicate_keys"), 2);
    assert_eq!(ledger_count(&sb, "C21_repeated_key_already_stored.csv", "duplicate_keys"), 1);
}

// ---------------------------------------------------------------------------------------------
// C23 — the same file name arrives twice
// ---------------------------------------------------------------------------------------------

/// Delivers `bytes` as `name` the way the C23 driver does: written under a hidden name, given
/// a fixed mtime, then renamed into place.
fn deliver(sb: &Sandbox, name: &str, bytes: &[u8], mtime: SystemTime) {
    let tmp = sb.inbox().join(format!(".{name}.tmp"));
    fs::write(&tmp, bytes).unwrap();
    fs::File::options().write(true).open(&tmp).unwrap().set_modified(mtime).unwrap();
    fs::rename(&tmp, sb.inbox().join(name)).unwrap();
}

#[test]
fn same_name_with_new_content_is_applied_and_old_content_again_is_a_duplicate() {
    let a: &[u8] = b"cluster_name,region,nodes\nk-01,eu,1\nk-02,us,2\n";
    let b: &[u8] = b"cluster_name,region,nodes\nk-01,eu,9\nk-03,ap,3\n";
    assert_eq!(a.len(), b.len());
    let (sum_a, sum_b) = (xxh128_hex(a), xxh128_hex(b));
    assert_ne!(sum_a, sum_b);
    let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let sb = Sandbox::new();

    deliver(&sb, "daily.csv", a, stamp);
    let run = sb.run();
    assert_applied(&sb, &run, "daily.csv", a);

    deliver(&sb, "daily.csv", b, stamp);
    let run = sb.run();
    assert_applied(&sb, &run, "daily.csv", b);
    assert_value(&sb, "k-01", "nodes", Some("9"));
    assert_value(&sb, "k-02", "nodes", Some("2"));
    assert_value(&sb, "k-03", "nodes", Some("3"));
    let applied: Vec<String> =
        ledger_of(&sb, "daily.csv").into_iter().filter(|r| r.0 == "applied").map(|r| r.1).collect();
    assert_eq!(applied, [sum_a.clone(), sum_b.clone()]);
    let archived = stamped(&sb, &sb.archive(), "daily.csv");
    assert_eq!(archived.len(), 2, "{archived:?}");
    let mut sums: Vec<String> =
        archived.iter().map(|n| xxh128_hex(&fs::read(sb.archive().join(n)).unwrap())).collect();
    sums.sort();
    let mut expected = vec![sum_a.clone(), sum_b.clone()];
    expected.sort();
    assert_eq!(sums, expected);

    let before = snapshot(&sb);
    deliver(&sb, "daily.csv", a, stamp);
    let run = sb.run_expect(0);
    assert!(run.stdout.contains(&format!("duplicate daily.csv (checksum {sum_a})")), "{run:?}");
    assert_eq!(snapshot(&sb), before, "a repeated delivery changed the store");
    assert_value(&sb, "k-01", "nodes", Some("9"));
    let last = ledger_of(&sb, "daily.csv").pop().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("duplicate", sum_a.as_str()));
    assert!(!sb.inbox().join("daily.csv").exists());

    let entries = sb.ledger().len();
    let run = sb.run_expect(0);
    assert!(!run.text().contains("daily.csv"), "{run:?}");
    assert_eq!(sb.ledger().len(), entries, "the duplicate was examined again");
}

#[test]
fn a_rejected_delivery_does_not_block_a_corrected_file_of_the_same_name() {
    let bad: &[u8] = b"cluster_name,region,nodes\nk-01,eu,1\nk-02,us\n";
    let good: &[u8] = b"cluster_name,region,nodes\nk-01,eu,1\nk-02,us,2\n";
    let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let (sb, before) = seeded(json!({}));

    deliver(&sb, "daily.csv", bad, stamp);
    let run = sb.run();
    assert_rejected(&sb, &before, &run, "daily.csv", bad, "ragged_row", Some(3));

    deliver(&sb, "daily.csv", good, stamp);
    let run = sb.run();
    assert_applied(&sb, &run, "daily.csv", good);
    assert_value(&sb, "k-02", "nodes", Some("2"));

    // The bad content again is rejected again, not waved through as a known file.
    let before = snapshot(&sb);
    deliver(&sb, "daily.csv", bad, stamp);
    let run = sb.run();
    assert_eq!(run.status, 2, "{run:?}");
    assert_eq!(snapshot(&sb), before);
    assert_eq!(ledger_of(&sb, "daily.csv").last().unwrap().0, "rejected");
}
