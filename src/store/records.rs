//! Writing records: the prepared statements that insert or replace one row of `record_data`,
//! built once per file for the file's set of columns.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Statement};

use super::catalog::Column;

/// What writing one row did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Inserted,
    Updated,
    Unchanged,
    /// The key was already written earlier in this file (at `first_line`); the row replaced it.
    Repeated {
        first_line: u64,
        /// The earlier row of this file had been counted unchanged, and this one changes the
        /// stored row: the key now counts as updated (known only when history is kept).
        now_updated: bool,
    },
}

/// Writes rows of one file: each row replaces the stored row of its key, with NULL in every
/// live column the file lacks.
pub struct RecordWriter<'c> {
    conn: &'c Connection,
    select: Statement<'c>,
    insert: Statement<'c>,
    update: Statement<'c>,
    /// Inserts into `record_version`, when history is kept.
    version: Option<Statement<'c>>,
    /// For each live value column, the index of the file field that feeds it.
    slots: Vec<Option<usize>>,
    /// The file field indexes that have a live value column, in insert order.
    inserted_fields: Vec<usize>,
    /// Seq numbers at or above this were written by the current file.
    first_seq: i64,
    next_seq: i64,
    file_id: i64,
    encoded: String,
}

impl<'c> RecordWriter<'c> {
    /// `field_columns[i]` is the live column fed by field `i` of the file (the key included).
    pub fn new(
        conn: &'c Connection,
        live: &[Column],
        field_columns: &[&Column],
        file_id: i64,
        history: bool,
    ) -> rusqlite::Result<Self> {
        let values: Vec<&Column> = live.iter().filter(|c| !c.is_key).collect();
        let slots: Vec<Option<usize>> =
            values.iter().map(|v| field_columns.iter().position(|f| f.id == v.id)).collect();
        let inserted_fields: Vec<usize> = slots.iter().flatten().copied().collect();

        let mut select_sql = "SELECT seq, line".to_string();
        for column in &values {
            select_sql.push_str(", ");
            select_sql.push_str(&column.physical());
        }
        select_sql.push_str(" FROM record_data WHERE key = ?1");

        let mut insert_cols =
            vec!["seq".to_string(), "key".into(), "file_id".into(), "line".into()];
        let mut update_sets =
            vec!["seq = ?1".to_string(), "file_id = ?3".into(), "line = ?4".into()];
        let mut param = 5;
        for (column, slot) in values.iter().zip(&slots) {
            if slot.is_some() {
                insert_cols.push(column.physical());
                update_sets.push(format!("{} = ?{param}", column.physical()));
                param += 1;
            } else {
                update_sets.push(format!("{} = NULL", column.physical()));
            }
        }
        let placeholders: Vec<String> = (1..=insert_cols.len()).map(|i| format!("?{i}")).collect();
        let insert_sql = format!(
            "INSERT INTO record_data ({}) VALUES ({})",
            insert_cols.join(", "),
            placeholders.join(", ")
        );
        let update_sql =
            format!("UPDATE record_data SET {} WHERE key = ?2", update_sets.join(", "));

        let first_seq: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) + 1 FROM record_data", [], |r| r.get(0))?;
        if history {
            let ids: Vec<String> = values
                .iter()
                .zip(&slots)
                .filter(|(_, slot)| slot.is_some())
                .map(|(c, _)| c.id.to_string())
                .collect();
            conn.prepare_cached("INSERT INTO file_columns (file_id, column_ids) VALUES (?1, ?2)")?
                .execute(rusqlite::params![file_id, ids.join(",")])?;
        }
        let version = if history {
            Some(conn.prepare(
                "INSERT INTO record_version (key, seq, file_id, line, kind, vals) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?)
        } else {
            None
        };
        Ok(RecordWriter {
            conn,
            select: conn.prepare(&select_sql)?,
            insert: conn.prepare(&insert_sql)?,
            update: conn.prepare(&update_sql)?,
            version,
            slots,
            inserted_fields,
            first_seq,
            next_seq: first_seq,
            file_id,
            encoded: String::new(),
        })
    }

    /// Writes one row; `fields` are the file's fields, `key` the key field.
    pub fn write(&mut self, key: &str, fields: &[&str], line: u64) -> rusqlite::Result<Change> {
        let stored = self.compare(key, fields)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let stmt = if stored.is_some() { &mut self.update } else { &mut self.insert };
        stmt.raw_bind_parameter(1, seq)?;
        stmt.raw_bind_parameter(2, key)?;
        stmt.raw_bind_parameter(3, self.file_id)?;
        stmt.raw_bind_parameter(4, line as i64)?;
        for (offset, &field) in self.inserted_fields.iter().enumerate() {
            stmt.raw_bind_parameter(5 + offset, cell(fields[field]))?;
        }
        stmt.raw_execute()?;
        let repeated = stored.as_ref().is_some_and(|s| s.seq >= self.first_seq);
        let mut now_updated = false;
        if self.version.is_some() {
            now_updated = self.keep_version(key, fields, line, seq, stored.as_ref(), repeated)?;
        }
        crate::fault::point("row");
        Ok(match stored {
            None => Change::Inserted,
            Some(Stored { line, .. }) if repeated => {
                Change::Repeated { first_line: line, now_updated }
            }
            Some(Stored { same: true, .. }) => Change::Unchanged,
            Some(Stored { same: false, .. }) => Change::Updated,
        })
    }

    /// Records this write in `record_version`: the file's value fields for the row, or no
    /// values for a re-send that changed nothing. A key repeated in the file keeps one version
    /// for the file: the earlier one is replaced. Returns whether a repeat turned the key from
    /// unchanged into updated.
    fn keep_version(
        &mut self,
        key: &str,
        fields: &[&str],
        line: u64,
        seq: i64,
        stored: Option<&Stored>,
        repeated: bool,
    ) -> rusqlite::Result<bool> {
        let mut kind = match stored {
            None => "insert",
            Some(s) if s.same => "unchanged",
            Some(_) => "update",
        };
        let mut now_updated = false;
        if let (true, Some(earlier)) = (repeated, stored) {
            let earlier_kind: String = self
                .conn
                .prepare_cached(
                    "DELETE FROM record_version WHERE key = ?1 AND seq = ?2 RETURNING kind",
                )?
                .query_row(rusqlite::params![key, earlier.seq], |r| r.get(0))?;
            kind = match earlier_kind.as_str() {
                "insert" => "insert",
                "unchanged" if earlier.same => "unchanged",
                "unchanged" => {
                    now_updated = true;
                    "update"
                }
                _ => "update",
            };
        }
        let vals = if kind == "unchanged" {
            None
        } else {
            encode_fields(&mut self.encoded, self.inserted_fields.iter().map(|&i| cell(fields[i])));
            Some(self.encoded.as_str())
        };
        let insert = self.version.as_mut().expect("history is kept");
        insert.execute(rusqlite::params![key, seq, self.file_id, line as i64, kind, vals])?;
        Ok(now_updated)
    }

    /// Looks up the stored row of `key` and whether the incoming fields equal it.
    fn compare(&mut self, key: &str, fields: &[&str]) -> rusqlite::Result<Option<Stored>> {
        let slots = &self.slots;
        self.select
            .query_row([key], |row| {
                let mut same = true;
                for (index, slot) in slots.iter().enumerate() {
                    let incoming = slot.and_then(|i| cell(fields[i]));
                    let stored = match row.get_ref(index + 2)? {
                        ValueRef::Null => None,
                        ValueRef::Text(bytes) => Some(bytes),
                        _ => {
                            return Err(rusqlite::Error::InvalidColumnType(
                                index + 2,
                                "value".into(),
                                rusqlite::types::Type::Text,
                            ));
                        }
                    };
                    if stored != incoming.map(str::as_bytes) {
                        same = false;
                        break;
                    }
                }
                Ok(Stored { seq: row.get(0)?, line: row.get::<_, i64>(1)? as u64, same })
            })
            .optional()
    }
}

struct Stored {
    seq: i64,
    line: u64,
    same: bool,
}

/// A field as stored: an empty cell is NULL, anything else its exact text.
pub fn cell(field: &str) -> Option<&str> {
    if field.is_empty() { None } else { Some(field) }
}

/// Writes a row's value fields as one CSV record (an empty field for NULL; quoted only when a
/// field holds a comma, a quote or a line break).
pub fn encode_fields<'v>(out: &mut String, values: impl Iterator<Item = Option<&'v str>>) {
    out.clear();
    for (index, value) in values.enumerate() {
        if index > 0 {
            out.push(',');
        }
        let value = value.unwrap_or("");
        if value.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&value.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(value);
        }
    }
}

/// Reads fields written by [`encode_fields`] back, paired with the catalog ids of the file
/// that wrote them (`column_ids`, comma-separated); empty fields are left out.
pub fn decode_fields(vals: &str, column_ids: &str) -> std::collections::BTreeMap<i64, String> {
    let ids = column_ids.split(',').filter_map(|id| id.parse::<i64>().ok());
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(vals.as_bytes());
    let mut record = csv::StringRecord::new();
    if !matches!(reader.read_record(&mut record), Ok(true)) {
        return Default::default();
    }
    ids.zip(record.iter())
        .filter(|(_, v)| !v.is_empty())
        .map(|(id, v)| (id, v.to_string()))
        .collect()
}
