//! `CsvFile`: the byte checks, line counting and record reading of an input file.
//!
//! Input: one byte of settings (delimiter, chunking), then the file's bytes.
//! Checks: no panic; the same records, lines and error whether the bytes arrive at once or in
//! small pieces; record lines strictly increase; the checksum is that of the bytes; a file the
//! reader accepts parses to the same fields with the plain `csv` crate; valid UTF-8 without NUL
//! is never called an encoding fault.

use std::io::Cursor;

use csv_watchdog::error::Rule;
use csv_watchdog::ingest::read::{CsvFile, ReadError};

use crate::{Chunked, delimiter};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    records: Vec<(u64, Vec<String>)>,
    /// The checksum when the whole file was read, else the error as a user sees it.
    end: Result<u128, (Rule, Option<u64>, Option<usize>, String)>,
}

fn read_all(mut file: CsvFile) -> Outcome {
    let mut records = Vec::new();
    loop {
        match file.next_record() {
            Ok(Some(record)) => {
                let fields = record.fields.iter().map(|f| f.to_string()).collect();
                records.push((record.line, fields));
            }
            Ok(None) => return Outcome { records, end: Ok(file.checksum().0) },
            Err(ReadError::Input(e)) => {
                let column = e.column.as_ref().map(|c| c.position);
                return Outcome { records, end: Err((e.rule, e.line, column, e.message)) };
            }
            Err(ReadError::Io(e)) => panic!("an in-memory source gave an I/O error: {e}"),
        }
    }
}

pub fn check(data: &[u8]) {
    let Some((&settings, input)) = data.split_first() else { return };
    let delimiter = delimiter(settings);
    let whole = read_all(CsvFile::from_reader(Cursor::new(input.to_vec()), delimiter));
    let pieces =
        read_all(CsvFile::from_reader(Chunked::new(input.to_vec(), settings >> 2), delimiter));
    assert_eq!(whole, pieces, "the outcome depends on how the bytes were chunked");

    let mut last = 0;
    for (line, _) in &whole.records {
        assert!(*line > last, "record lines do not increase: {last} then {line}");
        last = *line;
    }
    match &whole.end {
        Ok(checksum) => {
            assert_eq!(*checksum, xxhash_rust::xxh3::xxh3_128(input), "checksum of the bytes");
            assert_eq!(fields_only(&whole), plain_csv(input, delimiter), "differs from csv crate");
        }
        Err((rule, line, _, message)) => {
            assert!(!message.is_empty());
            assert!(line.is_none_or(|l| l >= 1), "line 0 in {message}");
            if matches!(rule, Rule::Encoding | Rule::NulByte) {
                let utf16 = input.starts_with(&[0xFF, 0xFE]) || input.starts_with(&[0xFE, 0xFF]);
                let clean = std::str::from_utf8(input).is_ok() && !input.contains(&0);
                assert!(utf16 || !clean, "clean UTF-8 called an encoding fault: {message}");
            }
        }
    }
}


fn fields_only(outcome: &Outcome) -> Vec<Vec<String>> {
    outcome.records.iter().map(|(_, fields)| fields.clone()).collect()
}

fn plain_csv(input: &[u8], delimiter: u8) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(input);
    reader
        .byte_records()
        .map(|r| {
            let r = r.expect("the csv crate fails where the reader did not");
            r.iter().map(|f| String::from_utf8(f.to_vec()).expect("UTF-8 field")).collect()
        })
        .collect()
}
