//! Printing tables of results for people and for programs: an aligned table that fits the
//! terminal, CSV, a JSON array, or JSON lines.

use std::io::{self, IsTerminal, Write};

use serde_json::{Map, Value};

/// An output format chosen with `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
}

impl Format {
    /// The format asked for, else `table` on a terminal and `csv` otherwise.
    pub fn or_default(format: Option<Format>) -> Format {
        format.unwrap_or(if io::stdout().is_terminal() { Format::Table } else { Format::Csv })
    }
}

/// Prints rows under `headers` in `format`. A closed pipe ends the output quietly.
pub fn print(format: Format, headers: &[String], rows: &[Vec<Value>]) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match format {
        Format::Table => write_table(&mut out, headers, rows, terminal_width()),
        Format::Csv => write_csv(&mut out, headers, rows),
        Format::Json => write_json(&mut out, headers, rows),
        Format::Jsonl => rows.iter().try_for_each(|row| {
            serde_json::to_writer(&mut out, &object(headers, row))?;
            out.write_all(b"\n")
        }),
    };
    match result.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A row as a JSON object keyed by the headers, in their order; a repeated header gets a
/// `:2`, `:3`… suffix so that no value is lost.
pub fn object(headers: &[String], row: &[Value]) -> Value {
    let mut map = Map::new();
    for (header, value) in headers.iter().zip(row) {
        let mut name = header.clone();
        let mut n = 1;
        while map.contains_key(&name) {
            n += 1;
            name = format!("{header}:{n}");
        }
        map.insert(name, value.clone());
    }
    Value::Object(map)
}

fn write_json(out: &mut dyn Write, headers: &[String], rows: &[Vec<Value>]) -> io::Result<()> {
    let array: Vec<Value> = rows.iter().map(|row| object(headers, row)).collect();
    serde_json::to_writer_pretty(&mut *out, &array)?;
    out.write_all(b"\n")
}

fn write_csv(out: &mut dyn Write, headers: &[String], rows: &[Vec<Value>]) -> io::Result<()> {
    let mut writer =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(out);
    writer.write_record(headers)?;
    for row in rows {
        writer.write_record(row.iter().map(plain))?;
    }
    writer.flush()
}

/// A value as plain text: strings as they are, NULL as nothing.
pub fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn terminal_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return columns;
    }
    terminal_size::terminal_size().map_or(120, |(w, _)| w.0 as usize)
}

/// Writes an aligned table no wider than `width`, cutting the widest cells with "…".
pub fn write_table(
    out: &mut dyn Write,
    headers: &[String],
    rows: &[Vec<Value>],
    width: usize,
) -> io::Result<()> {
    let cells: Vec<Vec<String>> =
        rows.iter().map(|row| row.iter().map(|v| one_line(&plain(v))).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    fit(&mut widths, width.saturating_sub(2 * headers.len().saturating_sub(1)));
    let line = |values: &[String]| -> String {
        let parts: Vec<String> =
            values.iter().zip(&widths).map(|(v, &w)| pad(&cut(v, w), w)).collect();
        parts.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(headers))?;
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    writeln!(out, "{}", rule.join("  "))?;
    for row in &cells {
        writeln!(out, "{}", line(row))?;
    }
    writeln!(out, "({} row{})", rows.len(), if rows.len() == 1 { "" } else { "s" })
}

/// Narrows the widest columns until the total fits `budget` (each keeps at least 4).
fn fit(widths: &mut [usize], budget: usize) {
    while widths.iter().sum::<usize>() > budget {
        let (index, &widest) =
            widths.iter().enumerate().max_by_key(|(_, w)| **w).expect("some column");
        if widest <= 4 {
            break;
        }
        widths[index] = widest - 1;
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n', '\t'], " ")
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_fits_the_width_by_cutting_the_widest_column() {
        let headers = vec!["key".to_string(), "note".to_string()];
        let rows = vec![vec![json!("a"), json!("a rather long note that does not fit")]];
        let mut out = Vec::new();
        write_table(&mut out, &headers, &rows, 20).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "key  note\n---  ---------------\na    a rather long …\n(1 row)\n");
    }
}
