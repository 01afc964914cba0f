//! Row history: every write of a row by a file, and what it changed.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use super::records::decode_fields;

/// One write of a row.
#[derive(Debug, Clone)]
pub struct Version {
    pub kind: String,
    /// The row's values after the write, by catalog id; `None` for an unchanged re-send.
    pub values: Option<BTreeMap<i64, String>>,
    pub line: i64,
    pub file_id: i64,
    pub file_name: String,
    pub applied_at: String,
}

/// A column whose value a version changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnChange {
    pub column_id: i64,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The writes of the row with `key`, oldest first.
pub fn versions(conn: &Connection, key: &str) -> rusqlite::Result<Vec<Version>> {
    let mut stmt = conn.prepare_cached(include_str!("../../sql/history.sql"))?;
    let rows = stmt.query_map([key], |r| {
        let vals: Option<String> = r.get(1)?;
        let column_ids: Option<String> = r.get(6)?;
        Ok(Version {
            kind: r.get(0)?,
            values: vals.as_deref().map(|v| decode_fields(v, column_ids.as_deref().unwrap_or(""))),
            line: r.get(2)?,
            file_id: r.get(3)?,
            file_name: r.get(4)?,
            applied_at: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// What each real version changed against the one before it, oldest first; unchanged
/// re-sends are left out.
pub fn changes(versions: &[Version]) -> Vec<(&Version, Vec<ColumnChange>)> {
    let empty = BTreeMap::new();
    let mut before = &empty;
    let mut out = Vec::new();
    for version in versions {
        let Some(after) = &version.values else { continue };
        let mut ids: Vec<i64> = before.keys().chain(after.keys()).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let changed = ids
            .into_iter()
            .filter(|id| before.get(id) != after.get(id))
            .map(|id| ColumnChange {
                column_id: id,
                old: before.get(&id).cloned(),
                new: after.get(&id).cloned(),
            })
            .collect();
        out.push((version, changed));
        before = after;
    }
    out
}

/// For each column holding a value now, the version that last set it.
pub fn blame(versions: &[Version]) -> BTreeMap<i64, (&Version, String)> {
    let mut owner: BTreeMap<i64, (&Version, String)> = BTreeMap::new();
    for (version, changed) in changes(versions) {
        for change in changed {
            match change.new {
                Some(value) => {
                    owner.insert(change.column_id, (version, value));
                }
                None => {
                    owner.remove(&change.column_id);
                }
            }
        }
    }
    owner
}

/// Every catalog column's name by id, dropped ones included.
pub fn column_names(conn: &Connection) -> rusqlite::Result<HashMap<i64, String>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM catalog")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: i64, values: Option<&[(i64, &str)]>) -> Version {
        Version {
            kind: if values.is_some() { "update".into() } else { "unchanged".into() },
            values: values.map(|v| v.iter().map(|(k, s)| (*k, s.to_string())).collect()),
            line: 2,
            file_id: id,
            file_name: format!("f{id}.csv"),
            applied_at: String::new(),
        }
    }

    #[test]
    fn changes_skip_unchanged_resends_and_blame_names_the_last_setter() {
        let versions = vec![
            version(1, Some(&[(2, "eu"), (3, "1")])),
            version(2, None),
            version(3, Some(&[(2, "eu"), (3, "5")])),
            version(4, Some(&[(3, "5")])),
        ];
        let changes = changes(&versions);
        assert_eq!(changes.len(), 3);
        assert_eq!(
            changes[1].1,
            vec![ColumnChange { column_id: 3, old: Some("1".into()), new: Some("5".into()) }]
        );
        assert_eq!(
            changes[2].1,
            vec![ColumnChange { column_id: 2, old: Some("eu".into()), new: None }]
        );
        let blame = blame(&versions);
        assert_eq!(blame.len(), 1);
        assert_eq!(blame[&3].0.file_id, 3);
    }
}
