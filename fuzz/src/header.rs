//! `header::check`: the rules a header row must follow.
//!
//! Input (lossy UTF-8): `key|required|required...` on the first line, then the header fields
//! separated by commas. Checks: no panic, and the verdict agrees with the rules: an accepted
//! header has non-empty, distinct names (ignoring case and surrounding spaces), holds the key
//! and every required column; a refused one names the rule that really is broken, the line it
//! was given, and a column inside the row.

use csv_watchdog::error::Rule;
use csv_watchdog::ingest::header::{self, ColumnName};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (spec, row) = text.split_once('\n').unwrap_or(("cluster_name", &text));
    let mut spec = spec.split('|');
    // The config trims names and refuses an empty key column.
    let key = spec.next().map(str::trim).filter(|k| !k.is_empty()).unwrap_or("cluster_name");
    let required: Vec<String> = spec.map(|r| r.trim().to_string()).collect();
    let fields: Vec<&str> = row.split(',').collect();
    let line = 1 + data.len() as u64 % 7;

    let names: Vec<ColumnName> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| ColumnName::new(if i == 0 { f.trim_start_matches('\u{feff}') } else { f }))
        .collect();
    let empty = names.iter().any(|c| c.text.is_empty());
    let repeated =
        names.iter().enumerate().any(|(i, c)| names[..i].iter().any(|d| d.folded == c.folded));
    let has = |wanted: &str| names.iter().any(|c| c.matches(wanted));

    match header::check(&fields, line, key, &required) {
        Ok(h) => {
            assert!(!empty && !repeated, "accepted a header with an empty or repeated name");
            assert_eq!(h.columns, names);
            assert!(h.columns[h.key_index].matches(key), "key_index names another column");
            assert!(required.iter().all(|r| has(r)), "accepted without a required column");
            assert_eq!(h.line, line);
        }
        Err(e) => {
            assert_eq!(e.line, Some(line), "{e}");
            assert!(!e.message.is_empty());
            if let Some(column) = &e.column {
                assert!((1..=fields.len()).contains(&column.position), "{e}");
            }
            let broken = match e.rule {
                Rule::EmptyHeaderName => empty,
                Rule::DuplicateHeaderName => repeated,
                Rule::MissingKeyColumn => !has(key),
                Rule::MissingRequiredColumn => !required.iter().all(|r| has(r)),
                other => panic!("unexpected rule {other:?}: {e}"),
            };
            assert!(broken, "refused for a rule the header does not break: {e}");
        }
    }
}
