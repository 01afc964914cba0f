//! Applying one input file to the store: read it, validate it, upsert its rows, evolve the
//! column catalog. The caller owns the transaction: all of a file is applied, or none of it.

pub mod header;
pub mod read;

use std::io;

use rusqlite::Connection;

use crate::config::Settings;
use crate::error::{InputError, Rule};
use crate::inbox::Candidate;
use crate::store::catalog::{self, Column};
use crate::store::ledger::{self, Counts};
use crate::store::records::{Change, RecordWriter};
use crate::store::{self, MAX_LIVE_COLUMNS};
use header::Header;
use read::{CsvFile, ReadError};

/// How many repeated keys are remembered (with their lines) for the warning.
const REPEATS_SHOWN: usize = 20;

/// Why a file could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file breaks a rule: reject it.
    #[error("{0}")]
    Input(InputError),
    /// The file could not be read: leave it in the inbox.
    #[error("cannot read the file: {0}")]
    Io(io::Error),
    /// The file changed while it was being applied: leave it for the next run.
    #[error("the file changed while it was being read; left for the next run")]
    Changed,
    #[error("store error: {}", crate::store::plain(.0))]
    Store(rusqlite::Error),
}

impl From<rusqlite::Error> for FileError {
    fn from(e: rusqlite::Error) -> FileError {
        FileError::Store(e)
    }
}

impl From<ReadError> for FileError {
    fn from(e: ReadError) -> FileError {
        match e {
            ReadError::Input(e) => FileError::Input(e),
            ReadError::Io(e) => FileError::Io(e),
        }
    }
}

impl From<InputError> for FileError {
    fn from(e: InputError) -> FileError {
        FileError::Input(e)
    }
}

/// A key seen more than once in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    pub key: String,
    pub first_line: u64,
    pub line: u64,
}

/// What applying a file did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub counts: Counts,
    pub added: Vec<String>,
    pub dropped: Vec<String>,
    /// The first repeated keys, with their lines (at most [`REPEATS_SHOWN`]).
    pub repeats: Vec<Repeat>,
    /// The first keys of the file, sorted, for the log line.
    pub sample_keys: Vec<String>,
}

/// Applies `file` to the store through `conn`, which must be inside a transaction.
pub fn apply(
    conn: &Connection,
    file: &Candidate,
    file_id: i64,
    settings: &Settings,
    now: &str,
) -> Result<Applied, FileError> {
    check_size(file, settings.max_file_size_bytes)?;
    let mut csv = CsvFile::open(&file.path, settings.csv_delimiter).map_err(FileError::Io)?;
    let header = read_header(&mut csv, settings)?;

    let (live, added) = admit_columns(conn, &header, file_id, now)?;
    let field_columns: Vec<&Column> = header
        .columns
        .iter()
        .map(|name| {
            live.iter().find(|c| c.folded == name.folded).expect("every header column is live")
        })
        .collect();

    let mut applied =
        Applied { added: added.iter().map(|c| c.name.clone()).collect(), ..Applied::default() };
    let had_empty = write_rows(
        conn,
        &mut csv,
        &header,
        &live,
        &field_columns,
        file_id,
        settings,
        &mut applied,
    )?;
    if csv.checksum() != file.checksum {
        return Err(FileError::Changed);
    }

    let dropped = drop_emptied_columns(conn, &live, &field_columns, &had_empty, file_id, now)?;
    applied.dropped = dropped.iter().map(|c| c.name.clone()).collect();
    if !added.is_empty() || !dropped.is_empty() {
        catalog::refresh_view(conn, &catalog::live_columns(conn)?)?;
    }

    applied.counts.columns_added = added.len() as u64;
    applied.counts.columns_dropped = dropped.len() as u64;
    ledger::set_counts(conn, file_id, &applied.counts, &store::now())?;
    if !settings.keep_history && store::get_meta(conn, "history_stops_at")?.is_none() {
        store::set_meta(conn, "history_stops_at", &file_id.to_string())?;
    }
    let (generation, _) = store::generations(conn)?;
    store::set_meta(conn, "data_generation", &(generation + 1).to_string())?;
    Ok(applied)
}

fn check_size(file: &Candidate, limit: u64) -> Result<(), InputError> {
    if file.size > limit {
        return Err(InputError::new(
            Rule::TooLarge,
            format!(
                "the file is {} bytes, over the limit of {limit} bytes (max_file_size_mb); raise the limit or split the file",
                file.size
            ),
        ));
    }
    if file.size == 0 {
        return Err(InputError::new(Rule::EmptyFile, "empty file (0 bytes)"));
    }
    Ok(())
}

fn read_header(csv: &mut CsvFile, settings: &Settings) -> Result<Header, FileError> {
    let Some(record) = csv.next_record()? else {
        return Err(
            InputError::new(Rule::NoHeader, "no header: the file holds only blank lines").into()
        );
    };
    Ok(header::check(
        &record.fields,
        record.line,
        &settings.key_column,
        &settings.required_columns,
    )?)
}

/// Matches the header to the catalog, adding the columns new to the store. Refuses, before any
/// change, a file that would take the store past its column limit.
fn admit_columns(
    conn: &Connection,
    header: &Header,
    file_id: i64,
    now: &str,
) -> Result<(Vec<Column>, Vec<Column>), FileError> {
    let live = catalog::live_columns(conn)?;
    let new: Vec<usize> = (0..header.columns.len())
        .filter(|&i| !live.iter().any(|c| c.folded == header.columns[i].folded))
        .collect();
    let total = live.len() + new.len();
    if total > MAX_LIVE_COLUMNS {
        return Err(InputError::new(
            Rule::TooManyColumns,
            format!(
                "the file has {} columns ({} new to the store, which holds {}); together {total} columns, \
                 over the store's limit of {MAX_LIVE_COLUMNS} (SQLite's 2000 columns per table, less {} for bookkeeping)",
                header.columns.len(),
                new.len(),
                live.len(),
                store::BOOKKEEPING_COLUMNS
            ),
        )
        .at_line(header.line)
        .into());
    }
    let mut added = Vec::with_capacity(new.len());
    for index in new {
        let name = &header.columns[index];
        added.push(catalog::add(
            conn,
            &name.text,
            &name.folded,
            index == header.key_index,
            file_id,
            now,
        )?);
    }
    let live = if added.is_empty() { live } else { catalog::live_columns(conn)? };
    Ok((live, added))
}

/// Streams the data rows into the store. Returns, per field, whether it held an empty cell.
#[allow(clippy::too_many_arguments)]
fn write_rows(
    conn: &Connection,
    csv: &mut CsvFile,
    header: &Header,
    live: &[Column],
    field_columns: &[&Column],
    file_id: i64,
    settings: &Settings,
    applied: &mut Applied,
) -> Result<Vec<bool>, FileError> {
    let width = header.columns.len();
    let mut writer = RecordWriter::new(conn, live, field_columns, file_id, settings.keep_history)?;
    let mut had_empty = vec![false; width];
    let counts = &mut applied.counts;
    while let Some(record) = csv.next_record()? {
        if record.fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        check_row(header, &record.fields, record.line)?;
        let key = record.fields[header.key_index];
        for (flag, field) in had_empty.iter_mut().zip(&record.fields) {
            *flag |= field.is_empty();
        }
        counts.rows_read += 1;
        match writer.write(key, &record.fields, record.line)? {
            Change::Inserted => counts.inserted += 1,
            Change::Updated => counts.updated += 1,
            Change::Unchanged => counts.unchanged += 1,
            Change::Repeated { first_line, now_updated } => {
                counts.duplicate_keys += 1;
                if now_updated {
                    counts.unchanged -= 1;
                    counts.updated += 1;
                }
                if applied.repeats.len() < REPEATS_SHOWN {
                    applied.repeats.push(Repeat {
                        key: key.to_string(),
                        first_line,
                        line: record.line,
                    });
                }
            }
        }
        if applied.sample_keys.len() < settings.max_clusters_in_log
            && !applied.sample_keys.iter().any(|k| k == key)
        {
            applied.sample_keys.push(key.to_string());
        }
    }
    if counts.rows_read == 0 {
        return Err(InputError::new(
            Rule::NoDataRows,
            "no data rows: the file holds a header and nothing else",
        )
        .into());
    }
    applied.sample_keys.sort();
    Ok(had_empty)
}

/// A data row must have as many fields as the header and a non-empty key.
fn check_row(header: &Header, fields: &[&str], line: u64) -> Result<(), InputError> {
    let expected = header.columns.len();
    if fields.len() != expected {
        let err = InputError::new(
            Rule::RaggedRow,
            format!("expected {expected} fields (as in the header), found {}", fields.len()),
        )
        .at_line(line);
        return Err(if fields.len() < expected {
            err.at_column(fields.len() + 1, &header.columns[fields.len()].text)
        } else {
            err.at_column(expected + 1, "")
        });
    }
    if fields[header.key_index].is_empty() {
        let key = &header.columns[header.key_index].text;
        return Err(InputError::new(
            Rule::EmptyKey,
            format!("the key column {key:?} is empty; every row needs a key"),
        )
        .at_line(line)
        .at_column(header.key_index + 1, key));
    }
    Ok(())
}

/// Drops every value column that no stored row holds a value for any more. Only columns this
/// file could have emptied are checked: those it lacks, and those where it had an empty cell.
fn drop_emptied_columns(
    conn: &Connection,
    live: &[Column],
    field_columns: &[&Column],
    had_empty: &[bool],
    file_id: i64,
    now: &str,
) -> rusqlite::Result<Vec<Column>> {
    let mut dropped = Vec::new();
    for column in live.iter().filter(|c| !c.is_key) {
        let field = field_columns.iter().position(|f| f.id == column.id);
        let could_be_empty = field.is_none_or(|i| had_empty[i]);
        if could_be_empty && !catalog::holds_values(conn, column)? {
            dropped.push(column.clone());
        }
    }
    catalog::drop_columns(conn, &dropped, file_id, now)?;
    Ok(dropped)
}
