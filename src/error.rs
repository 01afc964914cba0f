//! Errors a user can cause with an input file, and the exit statuses of the tool.
//!
//! An input error always knows which rule was broken and, where there is one, the physical
//! line (1-based, the header is line 1) and the column (1-based position and header name).
//! The file name is added where the error is shown, so the same value can go into the ledger,
//! the rejection JSON and the terminal.

use std::fmt;

use serde::Serialize;

/// Exit statuses that scripts can rely on.
pub mod exit {
    /// Everything went well, including "nothing to do".
    pub const OK: i32 = 0;
    /// The tool could not run: bad config, lock not obtained, store unusable, bad usage.
    pub const FAILURE: i32 = 1;
    /// The run finished, but at least one file was rejected (or could not be read).
    pub const REJECTED: i32 = 2;
}

/// The validation rule a rejected file broke. The snake_case name is stored in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    TooLarge,
    Encoding,
    NulByte,
    EmptyFile,
    NoHeader,
    NoDataRows,
    EmptyHeaderName,
    DuplicateHeaderName,
    MissingKeyColumn,
    MissingRequiredColumn,
    RaggedRow,
    EmptyKey,
    TooManyColumns,
    Malformed,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::TooLarge => "too_large",
            Rule::Encoding => "encoding",
            Rule::NulByte => "nul_byte",
            Rule::EmptyFile => "empty_file",
            Rule::NoHeader => "no_header",
            Rule::NoDataRows => "no_data_rows",
            Rule::EmptyHeaderName => "empty_header_name",
            Rule::DuplicateHeaderName => "duplicate_header_name",
            Rule::MissingKeyColumn => "missing_key_column",
            Rule::MissingRequiredColumn => "missing_required_column",
            Rule::RaggedRow => "ragged_row",
            Rule::EmptyKey => "empty_key",
            Rule::TooManyColumns => "too_many_columns",
            Rule::Malformed => "malformed",
        }
    }
}

/// A column of an input file: its 1-based position and its header name as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnRef {
    pub position: usize,
    pub name: String,
}

/// Why a file was rejected, with the place in the file where that was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputError {
    pub rule: Rule,
    pub line: Option<u64>,
    pub column: Option<ColumnRef>,
    pub message: String,
}

impl InputError {
    pub fn new(rule: Rule, message: impl Into<String>) -> InputError {
        InputError { rule, line: None, column: None, message: message.into() }
    }

    pub fn at_line(mut self, line: u64) -> InputError {
        self.line = Some(line);
        self
    }

    pub fn at_column(mut self, position: usize, name: &str) -> InputError {
        self.column = Some(ColumnRef { position, name: name.to_string() });
        self
    }

    /// "line 3, column 2 (region)" or the part of it that is known; empty when neither is.
    pub fn place(&self) -> String {
        let mut parts = Vec::new();
        if let Some(line) = self.line {
            parts.push(format!("line {line}"));
        }
        match &self.column {
            Some(col) if col.name.is_empty() => parts.push(format!("column {}", col.position)),
            Some(col) => parts.push(format!("column {} ({})", col.position, col.name)),
            None => {}
        }
        parts.join(", ")
    }

    /// The full message, naming the file: what a user sees on the terminal and in the ledger.
    pub fn describe(&self, file_name: &str) -> String {
        let place = self.place();
        if place.is_empty() {
            format!("{file_name}: {} [{}]", self.message, self.rule.as_str())
        } else {
            format!("{file_name}: {place}: {} [{}]", self.message, self.rule.as_str())
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = self.place();
        if place.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{place}: {}", self.message)
        }
    }
}

impl std::error::Error for InputError {}
