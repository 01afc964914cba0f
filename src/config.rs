//! The configuration file: finding it, reading it, and turning it into one validated
//! [`Settings`] value before any other work is done.
//!
//! Key names are those of the old pandas script, so an existing `config.json` keeps working.
//! Relative paths resolve against the folder of the config file, so cron can run the tool from
//! any working directory.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::paths::{STORE_SUFFIXES, with_suffix};

/// Environment variable that names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "CSV_MONITOR_CONFIG";

/// How the master CSV orders its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnOrder {
    /// By code point, key included (the old script's order).
    Sorted,
    /// Key first, then the other columns in the order they were first seen.
    FirstSeen,
}

/// How the master CSV orders its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    /// Untouched rows keep their place; each file's rows follow, in file order.
    Arrival,
    /// By key, by code point.
    Key,
}

/// Everything the tool needs to know, validated, with absolute paths.
#[derive(Debug, Clone)]
pub struct Settings {
    pub watch_dir: PathBuf,
    pub archive_dir: PathBuf,
    pub rejected_dir: PathBuf,
    pub merged_file: PathBuf,
    pub metadata_file: PathBuf,
    pub store_file: PathBuf,
    pub key_column: String,
    pub required_columns: Vec<String>,
    /// Lower-cased, each with its leading dot.
    pub supported_extensions: Vec<String>,
    pub csv_delimiter: u8,
    pub max_file_size_bytes: u64,
    pub checksum_wait_seconds: f64,
    pub lock_file: PathBuf,
    pub lock_timeout_seconds: f64,
    pub log_file: PathBuf,
    pub log_level: String,
    pub log_max_bytes: u64,
    pub log_backup_count: u32,
    pub log_to_console: bool,
    pub max_clusters_in_log: usize,
    pub column_order: ColumnOrder,
    pub row_order: RowOrder,
    pub keep_history: bool,
}

/// A config problem: one line, said to the user, and exit status 1.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Every key the config file may hold, with its default as JSON text. The README's table of
/// keys is written from this list.
pub const KEYS: &[(&str, &str)] = &[
    ("watch_dir", "\"csv_inbox\""),
    ("archive_dir", "\"csv_archive\""),
    ("rejected_dir", "\"csv_rejected\""),
    ("merged_file", "\"final_clusters_data.csv\""),
    ("metadata_file", "\"final_clusters_metadata.json\""),
    ("store_file", "\"csv_watchdog.db\""),
    ("key_column", "\"cluster_name\""),
    ("required_columns", "[]"),
    ("supported_extensions", "[\".csv\"]"),
    ("csv_delimiter", "\",\""),
    ("csv_encoding", "\"utf-8\""),
    ("max_file_size_mb", "500"),
    ("checksum_wait_seconds", "2"),
    ("lock_file", "\"csv_watchdog.lock\""),
    ("lock_timeout_seconds", "30"),
    ("log_file", "\"csv_watchdog.log\""),
    ("log_level", "\"INFO\""),
    ("log_max_bytes", "10485760"),
    ("log_backup_count", "5"),
    ("log_to_console", "false"),
    ("max_clusters_in_log", "10"),
    ("column_order", "\"sorted\""),
    ("row_order", "\"arrival\""),
    ("keep_history", "true"),
];

/// The longest wait any setting or flag may ask for, in seconds.
pub const MAX_WAIT_SECONDS: f64 = 86_400.0;

const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "warning", "error", "critical"];

/// Finds the config file: `--config`, else `$CSV_MONITOR_CONFIG`, else `./config.json`.
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    match std::env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from("config.json"),
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        ConfigError(format!("config file {} is not valid JSON: {e}", path.display()))
    })?;
    let Value::Object(map) = value else {
        return Err(ConfigError(format!(
            "config file {} must hold a JSON object, like {{\"watch_dir\": \"csv_inbox\"}}",
            path.display()
        )));
    };
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = absolute(folder);
    from_map(&map, &base).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
}

/// Validates a config object, resolving relative paths against `base`.
pub fn from_map(map: &Map<String, Value>, base: &Path) -> Result<Settings, ConfigError> {
    check_known_keys(map)?;
    let cfg = Reader { map, base };

    let key_column = cfg.string("key_column")?;
    if key_column.trim().is_empty() {
        return Err(ConfigError("key_column must not be empty".into()));
    }
    let supported_extensions = cfg
        .strings("supported_extensions")?
        .into_iter()
        .map(|ext| {
            if ext.len() > 1 && ext.starts_with('.') {
                Ok(ext.to_ascii_lowercase())
            } else {
                Err(ConfigError(format!(
                    "supported_extensions: {ext:?} must start with '.' (like \".csv\")"
                )))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if supported_extensions.is_empty() {
        return Err(ConfigError("supported_extensions must list at least one extension".into()));
    }

    cfg.encoding()?;
    let settings = Settings {
        watch_dir: cfg.path("watch_dir")?,
        archive_dir: cfg.path("archive_dir")?,
        rejected_dir: cfg.path("rejected_dir")?,
        merged_file: cfg.path("merged_file")?,
        metadata_file: cfg.path("metadata_file")?,
        store_file: cfg.path("store_file")?,
        key_column: key_column.trim().to_string(),
        required_columns: cfg
            .strings("required_columns")?
            .iter()
            .map(|c| c.trim().to_string())
            .collect(),
        supported_extensions,
        csv_delimiter: cfg.delimiter()?,
        max_file_size_bytes: (cfg.positive("max_file_size_mb")? * 1024.0 * 1024.0).round() as u64,
        checksum_wait_seconds: cfg.seconds("checksum_wait_seconds")?,
        lock_file: cfg.path("lock_file")?,
        lock_timeout_seconds: cfg.seconds("lock_timeout_seconds")?,
        log_file: cfg.path("log_file")?,
        log_level: cfg.log_level()?,
        log_max_bytes: cfg.positive_int("log_max_bytes")?,
        log_backup_count: cfg.count("log_backup_count")?,
        log_to_console: cfg.boolean("log_to_console")?,
        max_clusters_in_log: cfg.positive_int("max_clusters_in_log")? as usize,
        column_order: match cfg.string("column_order")?.as_str() {
            "sorted" => ColumnOrder::Sorted,
            "first_seen" => ColumnOrder::FirstSeen,
            other => return Err(one_of("column_order", other, &["sorted", "first_seen"])),
        },
        row_order: match cfg.string("row_order")?.as_str() {
            "arrival" => RowOrder::Arrival,
            "key" => RowOrder::Key,
            other => return Err(one_of("row_order", other, &["arrival", "key"])),
        },
        keep_history: cfg.boolean("keep_history")?,
    };
    check_layout(&settings)?;
    if settings.key_column.chars().any(|c| c == '\0') {
        return Err(ConfigError("key_column must not contain a NUL character".into()));
    }
    Ok(settings)
}

/// Refuses layouts that would make the tool feed on itself or overwrite its own files: the
/// inbox doubling as the archive or rejected folder, a file of the tool's landing in the inbox
/// as an input, or two of its files at one path (an export written over the store).
fn check_layout(s: &Settings) -> Result<(), ConfigError> {
    let same = |a: &Path, b: &Path| lexical(a) == lexical(b);
    for (key, dir) in [("archive_dir", &s.archive_dir), ("rejected_dir", &s.rejected_dir)] {
        if same(dir, &s.watch_dir) {
            return Err(ConfigError(format!(
                "{key} must not be the watch_dir: every archived file would be read again"
            )));
        }
    }
    let files = [
        ("merged_file", &s.merged_file),
        ("metadata_file", &s.metadata_file),
        ("store_file", &s.store_file),
        ("lock_file", &s.lock_file),
        ("log_file", &s.log_file),
    ];
    for (index, (key, file)) in files.iter().enumerate() {
        if s.is_inbox_input(file) {
            return Err(ConfigError(format!(
                "{key} {} is inside watch_dir with a supported extension: it would be read back as an input; put it elsewhere",
                file.display()
            )));
        }
        for (other_key, other) in &files[..index] {
            let clash =
                |a: &Path, b: &Path| STORE_SUFFIXES.iter().any(|x| same(a, &with_suffix(b, x)));
            if clash(file, other) || clash(other, file) {
                return Err(ConfigError(format!(
                    "{key} and {other_key} are the same file {}",
                    file.display()
                )));
            }
        }
        for (dir_key, dir) in [("archive_dir", &s.archive_dir), ("rejected_dir", &s.rejected_dir)] {
            if same(file, dir) || file.parent().is_some_and(|p| same(p, dir)) {
                return Err(ConfigError(format!(
                    "{key} {} must not be in {dir_key}",
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

impl Settings {
    /// Whether `path` would be picked up from the inbox as an input file.
    pub fn is_inbox_input(&self, path: &Path) -> bool {
        let in_inbox = path.parent().is_some_and(|p| lexical(p) == lexical(&self.watch_dir));
        let name =
            path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        in_inbox && self.supported_extensions.iter().any(|ext| name.ends_with(ext.as_str()))
    }

    /// Whether `path` is the store or one of its WAL files.
    pub fn is_store_file(&self, path: &Path) -> bool {
        ["", "-wal", "-shm"]
            .iter()
            .any(|suffix| lexical(path) == lexical(&with_suffix(&self.store_file, suffix)))
    }
}

/// A path with `.` and `..` resolved by text alone, for comparing configured paths.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn one_of(key: &str, got: &str, allowed: &[&str]) -> ConfigError {
    ConfigError(format!("{key}: {got:?} is not one of {}", allowed.join(", ")))
}

fn check_known_keys(map: &Map<String, Value>) -> Result<(), ConfigError> {
    for key in map.keys() {
        if KEYS.iter().any(|(known, _)| known == key) {
            continue;
        }
        let closest = KEYS
            .iter()
            .map(|(known, _)| (strsim::jaro_winkler(known, key), *known))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, known)| known)
            .unwrap_or("watch_dir");
        return Err(ConfigError(format!("unknown key {key:?}; did you mean {closest:?}?")));
    }
    Ok(())
}

/// Reads typed values out of the config object, falling back to the defaults in [`KEYS`].
struct Reader<'a> {
    map: &'a Map<String, Value>,
    base: &'a Path,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Value {
        if let Some(value) = self.map.get(key) {
            return value.clone();
        }
        let default = KEYS.iter().find(|(k, _)| *k == key).expect("every key has a default").1;
        serde_json::from_str(default).expect("defaults are valid JSON")
    }

    fn wrong_type(&self, key: &str, wanted: &str, got: &Value) -> ConfigError {
        ConfigError(format!("{key} must be {wanted}, not {got}"))
    }

    fn string(&self, key: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(key, "a string", &other)),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let value = self.get(key);
        let Value::Array(items) = &value else {
            return Err(self.wrong_type(key, "a list of strings", &value));
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.wrong_type(key, "a list of strings", &value)),
            })
            .collect()
    }

    fn path(&self, key: &str) -> Result<PathBuf, ConfigError> {
        let text = self.string(key)?;
        if text.trim().is_empty() {
            return Err(ConfigError(format!("{key} must not be empty")));
        }
        let path = PathBuf::from(text);
        Ok(if path.is_absolute() { path } else { self.base.join(path) })
    }

    fn number(&self, key: &str) -> Result<f64, ConfigError> {
        match self.get(key) {
            Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            other => Err(self.wrong_type(key, "a number", &other)),
        }
    }

    fn positive(&self, key: &str) -> Result<f64, ConfigError> {
        let n = self.number(key)?;
        if n.is_finite() && n > 0.0 {
            Ok(n)
        } else {
            Err(ConfigError(format!("{key} must be positive, not {n}")))
        }
    }

    fn non_negative(&self, key: &str) -> Result<f64, ConfigError> {
        let n = self.number(key)?;
        if n.is_finite() && n >= 0.0 {
            Ok(n)
        } else {
            Err(ConfigError(format!("{key} must be zero or more, not {n}")))
        }
    }

    /// A wait in seconds: zero up to a day.
    fn seconds(&self, key: &str) -> Result<f64, ConfigError> {
        let n = self.non_negative(key)?;
        if n > MAX_WAIT_SECONDS {
            return Err(ConfigError(format!(
                "{key} must be at most {MAX_WAIT_SECONDS} (a day), not {n}"
            )));
        }
        Ok(n)
    }

    fn positive_int(&self, key: &str) -> Result<u64, ConfigError> {
        match self.get(key) {
            Value::Number(n) if n.as_u64().is_some_and(|v| v > 0) => Ok(n.as_u64().unwrap()),
            other => Err(self.wrong_type(key, "a positive whole number", &other)),
        }
    }

    fn count(&self, key: &str) -> Result<u32, ConfigError> {
        match self.get(key) {
            Value::Number(n) if n.as_u64().is_some_and(|v| v <= 1000) => {
                Ok(n.as_u64().unwrap() as u32)
            }
            other => Err(self.wrong_type(key, "a whole number from 0 to 1000", &other)),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, ConfigError> {
        match self.get(key) {
            Value::Bool(b) => Ok(b),
            other => Err(self.wrong_type(key, "true or false", &other)),
        }
    }

    fn delimiter(&self) -> Result<u8, ConfigError> {
        let text = self.string("csv_delimiter")?;
        let text = if text == "\\t" { "\t".to_string() } else { text };
        match text.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\r' | b'\n' | 0) => Ok(*b),
            _ => Err(ConfigError(format!(
                "csv_delimiter must be one ASCII character other than a quote or line break, not {text:?}"
            ))),
        }
    }

    /// Only UTF-8 is read; any other encoding is refused up front.
    fn encoding(&self) -> Result<(), ConfigError> {
        let text = self.string("csv_encoding")?;
        match text.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" | "utf-8-sig" => Ok(()),
            _ => Err(ConfigError(format!(
                "csv_encoding {text:?} is not supported; only \"utf-8\" is (convert the files first, e.g. with iconv)"
            ))),
        }
    }

    fn log_level(&self) -> Result<String, ConfigError> {
        let text = self.string("log_level")?;
        let lower = text.to_ascii_lowercase();
        if !LOG_LEVELS.contains(&lower.as_str()) {
            return Err(one_of("log_level", &text, &["DEBUG", "INFO", "WARNING", "ERROR"]));
        }
        Ok(match lower.as_str() {
            "warning" => "warn".to_string(),
            "critical" => "error".to_string(),
            _ => lower,
        })
    }
}

/// Makes a path absolute against the current directory, without touching the file system.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Settings, ConfigError> {
        let map: Map<String, Value> = serde_json::from_str(json).unwrap();
        from_map(&map, Path::new("/base"))
    }

    #[test]
    fn defaults_resolve_against_the_config_folder() {
        let s = parse("{}").unwrap();
        assert_eq!(s.watch_dir, PathBuf::from("/base/csv_inbox"));
        assert_eq!(s.key_column, "cluster_name");
        assert_eq!(s.supported_extensions, vec![".csv".to_string()]);
        assert_eq!(s.max_file_size_bytes, 500 * 1024 * 1024);
        assert_eq!(s.column_order, ColumnOrder::Sorted);
    }

    #[test]
    fn unknown_key_names_the_closest_known_key() {
        let err = parse(r#"{"wach_dir": "x"}"#).unwrap_err();
        assert_eq!(err.0, r#"unknown key "wach_dir"; did you mean "watch_dir"?"#);
    }

    #[test]
    fn rejects_wrong_types_empty_key_bad_extension_and_non_positive_limits() {
        assert!(parse(r#"{"log_to_console": "yes"}"#).unwrap_err().0.contains("true or false"));
        assert!(
            parse(r#"{"key_column": "  "}"#)
                .unwrap_err()
                .0
                .contains("key_column must not be empty")
        );
        assert!(
            parse(r#"{"supported_extensions": ["csv"]}"#)
                .unwrap_err()
                .0
                .contains("must start with '.'")
        );
        assert!(parse(r#"{"max_file_size_mb": 0}"#).unwrap_err().0.contains("must be positive"));
        assert!(
            parse(r#"{"max_clusters_in_log": -1}"#)
                .unwrap_err()
                .0
                .contains("positive whole number")
        );
        assert!(
            parse(r#"{"column_order": "random"}"#).unwrap_err().0.contains("not one of sorted")
        );
    }

    #[test]
    fn an_output_or_archive_inside_the_inbox_is_refused() {
        let e = parse(r#"{"watch_dir": "in", "merged_file": "in/master.csv"}"#).unwrap_err();
        assert!(e.0.contains("merged_file"), "{}", e.0);
        let e = parse(r#"{"watch_dir": "in", "archive_dir": "./in/"}"#).unwrap_err();
        assert!(e.0.contains("archive_dir must not be the watch_dir"), "{}", e.0);
        assert!(parse(r#"{"watch_dir": "in", "merged_file": "in/master.txt"}"#).is_ok());
        let e = parse(r#"{"watch_dir": "in", "lock_file": "in/x.csv"}"#).unwrap_err();
        assert!(e.0.contains("lock_file"), "{}", e.0);
        let e = parse(r#"{"merged_file": "csv_watchdog.db"}"#).unwrap_err();
        assert!(e.0.contains("store_file and merged_file are the same file"), "{}", e.0);
        let e = parse(r#"{"metadata_file": "csv_watchdog.db-wal"}"#).unwrap_err();
        assert!(e.0.contains("the same file"), "{}", e.0);
        let e = parse(r#"{"merged_file": "csv_archive/m.csv"}"#).unwrap_err();
        assert!(e.0.contains("must not be in archive_dir"), "{}", e.0);
        let e = parse(r#"{"checksum_wait_seconds": 1e20}"#).unwrap_err();
        assert!(e.0.contains("at most 86400"), "{}", e.0);
    }

    #[test]
    fn fractional_size_limit_is_kept_to_the_byte() {
        let s = parse(r#"{"max_file_size_mb": 0.095367431640625}"#).unwrap();
        assert_eq!(s.max_file_size_bytes, 100_000);
    }
}
