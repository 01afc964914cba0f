//! The header of an input file: column names trimmed, compared without regard to ASCII case,
//! and checked for the rules a header must follow before any row is read.

use crate::error::{InputError, Rule};

/// A column name as written in a header (trimmed) and its folded form used for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnName {
    pub text: String,
    pub folded: String,
}

impl ColumnName {
    pub fn new(raw: &str) -> ColumnName {
        let text = raw.trim().to_string();
        let folded = text.to_ascii_lowercase();
        ColumnName { text, folded }
    }

    pub fn matches(&self, other: &str) -> bool {
        self.folded == other.trim().to_ascii_lowercase()
    }
}

/// A header that passed every check.
#[derive(Debug, Clone)]
pub struct Header {
    pub columns: Vec<ColumnName>,
    pub key_index: usize,
    pub line: u64,
}

/// Checks a header row against the rules: no empty or repeated name, the key column present,
/// every required column present.
pub fn check(
    fields: &[&str],
    line: u64,
    key_column: &str,
    required: &[String],
) -> Result<Header, InputError> {
    let columns: Vec<ColumnName> = fields
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            ColumnName::new(if i == 0 { raw.trim_start_matches('\u{feff}') } else { raw })
        })
        .collect();

    if let Some(index) = columns.iter().position(|c| c.text.is_empty()) {
        return Err(InputError::new(
            Rule::EmptyHeaderName,
            format!("header column {} has no name; every column needs one", index + 1),
        )
        .at_line(line)
        .at_column(index + 1, ""));
    }
    check_repeats(&columns, line)?;

    let key_index = columns.iter().position(|c| c.matches(key_column)).ok_or_else(|| {
        InputError::new(Rule::MissingKeyColumn, missing_key_message(&columns, fields, key_column))
            .at_line(line)
    })?;

    let missing: Vec<&str> = required
        .iter()
        .filter(|r| !columns.iter().any(|c| c.matches(r)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(InputError::new(
            Rule::MissingRequiredColumn,
            format!("required column(s) missing: {}", quoted_list(&missing)),
        )
        .at_line(line));
    }
    Ok(Header { columns, key_index, line })
}

fn check_repeats(columns: &[ColumnName], line: u64) -> Result<(), InputError> {
    for (later, column) in columns.iter().enumerate() {
        if let Some(first) = columns[..later].iter().position(|c| c.folded == column.folded) {
            let message = format!(
                "duplicate column name: {:?} (column {}) and {:?} (column {}) are the same name \
                 (names are compared ignoring letter case and surrounding spaces); rename or remove one",
                columns[first].text,
                first + 1,
                column.text,
                later + 1
            );
            return Err(InputError::new(Rule::DuplicateHeaderName, message)
                .at_line(line)
                .at_column(later + 1, &column.text));
        }
    }
    Ok(())
}

fn missing_key_message(columns: &[ColumnName], raw: &[&str], key_column: &str) -> String {
    let shown: Vec<&str> = raw.iter().take(20).copied().collect();
    let more = if raw.len() > 20 { format!(" ... ({} in all)", raw.len()) } else { String::new() };
    let mut message = format!(
        "key column {key_column:?} not found; the header as read is {}{more}",
        quoted_list(&shown)
    );
    let key_folded = key_column.to_ascii_lowercase();
    if let Some(guess) = closest(columns, &key_folded) {
        message.push_str(&format!("; did you mean {guess:?}? (set key_column in the config)"));
    }
    if columns.len() == 1
        && let Some(sep) = [';', '\t', '|'].into_iter().find(|s| columns[0].text.contains(*s))
    {
        message.push_str(&format!(
            "; the header looks {}-separated: set csv_delimiter to {:?}",
            if sep == '\t' { "tab".to_string() } else { format!("'{sep}'") },
            sep.to_string()
        ));
    }
    message
}

fn closest<'a>(columns: &'a [ColumnName], key_folded: &str) -> Option<&'a str> {
    columns
        .iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(&c.folded, key_folded), c.text.as_str()))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, text)| text)
}

fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_the_key_found_ignoring_case() {
        let h = check(&[" Cluster_Name ", "region "], 1, "cluster_name", &[]).unwrap();
        assert_eq!(h.columns[0].text, "Cluster_Name");
        assert_eq!(h.columns[1].text, "region");
        assert_eq!(h.key_index, 0);
    }

    #[test]
    fn repeated_names_differing_in_case_are_rejected_naming_both() {
        let e = check(&["cluster_name", "Env", "env"], 1, "cluster_name", &[]).unwrap_err();
        assert_eq!(e.rule, Rule::DuplicateHeaderName);
        assert_eq!(e.column.as_ref().unwrap().position, 3);
        assert!(e.message.contains("\"Env\" (column 2) and \"env\" (column 3)"), "{}", e.message);
    }

    #[test]
    fn missing_key_suggests_a_near_match() {
        let e = check(&["cluster-name", "x"], 1, "cluster_name", &[]).unwrap_err();
        assert_eq!(e.rule, Rule::MissingKeyColumn);
        assert!(e.message.contains("did you mean \"cluster-name\""), "{}", e.message);
    }

    #[test]
    fn semicolon_header_read_with_comma_hints_at_the_delimiter() {
        let e = check(&["cluster_name;region"], 1, "cluster_name", &[]).unwrap_err();
        assert!(e.message.contains("\"cluster_name;region\""), "{}", e.message);
        assert!(e.message.contains("csv_delimiter"), "{}", e.message);
    }

    #[test]
    fn missing_required_columns_are_listed() {
        let e = check(&["cluster_name"], 1, "cluster_name", &["owner".into()]).unwrap_err();
        assert_eq!(e.rule, Rule::MissingRequiredColumn);
        assert!(e.message.contains("\"owner\""));
    }

    #[test]
    fn an_empty_name_is_rejected_with_its_position() {
        let e = check(&["cluster_name", " "], 1, "cluster_name", &[]).unwrap_err();
        assert_eq!((e.rule, e.column.unwrap().position), (Rule::EmptyHeaderName, 2));
    }
}
