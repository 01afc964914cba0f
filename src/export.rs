//! Writing the master CSV and the metadata JSON from the store.
//!
//! Each output is written to a temporary file in the folder of its target, flushed and synced,
//! given the permissions of the file it replaces, then renamed over it: a reader sees the old
//! file or the new one, never half of one.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::checksum::Checksum;
use crate::config::{ColumnOrder, RowOrder, Settings};
use crate::store::{self, catalog, catalog::Column, ledger, records};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error(transparent)]
    Store(#[from] rusqlite::Error),
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub rows: u64,
    pub columns: Vec<String>,
    pub checksum: Checksum,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    last_updated: String,
    row_count: u64,
    column_count: usize,
    columns: &'a [String],
    key_column: &'a str,
    files_applied: i64,
    merged_file_xxh3_128: String,
}

/// Which state of the store to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The store as it is.
    Now,
    /// The store right after the applied file with this ledger id, rebuilt from row history.
    AfterFile(i64),
}

/// Columns in export order.
pub fn export_columns(
    conn: &Connection,
    order: ColumnOrder,
    moment: Moment,
) -> rusqlite::Result<Vec<Column>> {
    let mut columns = match moment {
        Moment::Now => catalog::live_columns(conn)?,
        Moment::AfterFile(id) => catalog::columns_after(conn, id)?,
    };
    if order == ColumnOrder::Sorted {
        columns.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(columns)
}

/// Writes the master CSV to `csv_path` and the metadata JSON to `meta_path`.
pub fn export(
    conn: &Connection,
    settings: &Settings,
    moment: Moment,
    csv_path: &Path,
    meta_path: &Path,
) -> Result<Exported, ExportError> {
    let columns = export_columns(conn, settings.column_order, moment)?;
    let names: Vec<String> = if columns.is_empty() {
        vec![settings.key_column.clone()]
    } else {
        columns.iter().map(|c| c.name.clone()).collect()
    };
    let (rows, checksum) = write_atomically(csv_path, |out| {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(out);
        writer.write_record(&names)?;
        let rows = match moment {
            _ if columns.is_empty() => Ok(0),
            Moment::Now => write_rows(conn, &columns, settings.row_order, &mut writer),
            Moment::AfterFile(id) => {
                write_rows_after(conn, &columns, settings.row_order, id, &mut writer)
            }
        }?;
        writer.flush()?;
        Ok(rows)
    })?;

    let upto = match moment {
        Moment::Now => i64::MAX,
        Moment::AfterFile(id) => id,
    };
    let last_updated = ledger::last_applied_at(conn, upto)?.unwrap_or_else(store::now);
    let metadata = Metadata {
        last_updated,
        row_count: rows,
        column_count: names.len(),
        columns: &names,
        key_column: columns.iter().find(|c| c.is_key).map_or(&settings.key_column, |c| &c.name),
        files_applied: ledger::files_applied(conn, upto)?,
        merged_file_xxh3_128: checksum.to_string(),
    };
    crate::fault::point("export-between");
    write_atomically(meta_path, |out| {
        serde_json::to_writer_pretty(&mut *out, &metadata).map_err(io::Error::from)?;
        out.write_all(b"\n")
    })?;
    Ok(Exported { rows, columns: names, checksum })
}

type CsvOut<'w> = csv::Writer<&'w mut dyn Write>;

/// Writes the stored rows, in `order`.
fn write_rows(
    conn: &Connection,
    columns: &[Column],
    order: RowOrder,
    writer: &mut CsvOut,
) -> io::Result<u64> {
    let select: Vec<String> = columns.iter().map(Column::physical).collect();
    let order_by = match order {
        RowOrder::Arrival => "seq",
        RowOrder::Key => "key",
    };
    let sql = format!("SELECT {} FROM record_data ORDER BY {order_by}", select.join(", "));
    let mut stmt = conn.prepare(&sql).map_err(io::Error::other)?;
    let mut rows = stmt.query([]).map_err(io::Error::other)?;
    let mut record = csv::ByteRecord::new();
    let mut count = 0;
    while let Some(row) = rows.next().map_err(io::Error::other)? {
        record.clear();
        for index in 0..columns.len() {
            match row.get_ref(index).map_err(io::Error::other)? {
                ValueRef::Text(bytes) => record.push_field(bytes),
                _ => record.push_field(b""),
            }
        }
        writer.write_byte_record(&record)?;
        crate::fault::point("export-row");
        count += 1;
    }
    Ok(count)
}

/// Writes the rows as they stood right after ledger entry `file_id`, rebuilt from history.
fn write_rows_after(
    conn: &Connection,
    columns: &[Column],
    order: RowOrder,
    file_id: i64,
    writer: &mut CsvOut,
) -> io::Result<u64> {
    let order_by = match order {
        RowOrder::Arrival => "last.touch",
        RowOrder::Key => "last.key",
    };
    let sql = include_str!("../sql/as_of_rows.sql").replace("{order}", order_by);
    let mut stmt = conn.prepare(&sql).map_err(io::Error::other)?;
    let mut rows = stmt.query([file_id]).map_err(io::Error::other)?;
    let mut record = csv::StringRecord::new();
    let mut count = 0;
    while let Some(row) = rows.next().map_err(io::Error::other)? {
        let key: String = row.get(0).map_err(io::Error::other)?;
        let vals: String = row.get(1).map_err(io::Error::other)?;
        let column_ids: String = row.get(2).map_err(io::Error::other)?;
        let mut values = records::decode_fields(&vals, &column_ids);
        record.clear();
        for column in columns {
            if column.is_key {
                record.push_field(&key);
            } else {
                record.push_field(values.remove(&column.id).as_deref().unwrap_or(""));
            }
        }
        writer.write_record(&record)?;
        count += 1;
    }
    Ok(count)
}

/// Writes `target` through a temporary file beside it; returns what `fill` returned and the
/// checksum of the bytes written.
fn write_atomically<T>(
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> Result<(T, Checksum), ExportError> {
    let fail = |error: io::Error| ExportError::Io { path: target.to_path_buf(), error };
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp =
        tempfile::Builder::new().prefix(&temp_prefix(target)).tempfile_in(dir).map_err(fail)?;

    let mut hashing = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, tmp.as_file_mut()),
        hasher: Xxh3::new(),
    };
    let value = fill(&mut hashing).map_err(fail)?;
    hashing.flush().map_err(fail)?;
    let checksum = Checksum(hashing.hasher.digest128());
    drop(hashing);

    tmp.as_file().sync_all().map_err(fail)?;
    let permissions = match fs::metadata(target) {
        Ok(meta) => meta.permissions(),
        Err(_) => default_permissions(),
    };
    fs::set_permissions(tmp.path(), permissions).map_err(fail)?;
    crate::fault::point("export-before-rename");
    tmp.persist(target).map_err(|e| fail(e.error))?;
    crate::archive::sync_dir(target).map_err(fail)?;
    Ok((value, checksum))
}

/// The prefix of the temporary files written for `target`; recovery removes strays by it.
pub fn temp_prefix(target: &Path) -> String {
    format!(".{}.tmp-", target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

#[cfg(unix)]
fn default_permissions() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o644)
}

#[cfg(not(unix))]
fn default_permissions() -> fs::Permissions {
    fs::metadata(".").map(|m| m.permissions()).expect("current folder is readable")
}

struct HashingWriter<W> {
    inner: W,
    hasher: Xxh3,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
