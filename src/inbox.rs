//! Finding the files in the inbox that are ready: supported, regular, not hidden or partial,
//! and stable (size, modification time and checksum unchanged across the wait).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::checksum::Checksum;
use crate::config::Settings;

/// A stable file, ready to be read.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    pub mtime: SystemTime,
    pub checksum: Checksum,
}

impl Candidate {
    pub fn mtime_text(&self) -> String {
        chrono::DateTime::<chrono::Local>::from(self.mtime)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false)
    }
}

/// A file left in the inbox this time, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
    /// It could not be read (an error, exit status 2), rather than still being written.
    pub unreadable: bool,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Ready files, in the order they are to be applied: modification time, then name.
    pub ready: Vec<Candidate>,
    /// Files still changing, or unreadable: left for the next run.
    pub waiting: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq)]
struct Observation {
    size: u64,
    mtime: SystemTime,
    checksum: Checksum,
}

/// Scans the inbox, waits `checksum_wait_seconds`, and keeps the files that did not change.
pub fn scan(settings: &Settings) -> io::Result<Scan> {
    let names = list(&settings.watch_dir, &settings.supported_extensions)?;
    let mut result = Scan::default();
    let mut first = HashMap::new();
    for path in &names {
        match observe(path) {
            Ok(obs) => {
                first.insert(path.clone(), obs);
            }
            Err(e) => result.waiting.push(unreadable(path, &e)),
        }
    }
    if settings.checksum_wait_seconds > 0.0 && !first.is_empty() {
        std::thread::sleep(Duration::from_secs_f64(settings.checksum_wait_seconds));
    }
    for path in names {
        let Some(before) = first.remove(&path) else { continue };
        let after =
            if settings.checksum_wait_seconds > 0.0 { observe(&path) } else { Ok(before.clone()) };
        match after {
            Ok(after) if after == before => result.ready.push(Candidate {
                name: file_name(&path),
                path,
                size: after.size,
                mtime: after.mtime,
                checksum: after.checksum,
            }),
            Ok(_) => result.waiting.push(skipped(&path, "still changing; left for the next run")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                result
                    .waiting
                    .push(skipped(&path, "went away during the stability wait; nothing to do"));
            }
            Err(e) => result.waiting.push(unreadable(&path, &e)),
        }
    }
    result.ready.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
    Ok(result)
}

fn skipped(path: &Path, reason: &str) -> Skipped {
    Skipped { name: file_name(path), reason: reason.to_string(), unreadable: false }
}

fn unreadable(path: &Path, error: &io::Error) -> Skipped {
    Skipped {
        name: file_name(path),
        reason: format!("cannot read it: {error}; left in the inbox"),
        unreadable: true,
    }
}

fn observe(path: &Path) -> io::Result<Observation> {
    let meta = fs::metadata(path)?;
    let checksum = Checksum::of_file(path)?;
    let again = fs::metadata(path)?;
    if again.len() != meta.len() || again.modified()? != meta.modified()? {
        return Err(io::Error::other("changed while being hashed"));
    }
    Ok(Observation { size: meta.len(), mtime: meta.modified()?, checksum })
}

/// Supported regular files directly in `dir`, skipping hidden and partial names, folders and
/// symlinks (a symlink with a warning).
pub fn list(dir: &Path, extensions: &[String]) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(io::Error::new(e.kind(), format!("cannot list {}: {e}", dir.display())));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !has_extension(&name, extensions) {
            continue;
        }
        if is_hidden_or_partial(&name) {
            tracing::debug!(file = %name, "skipped: hidden or partial name");
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            tracing::warn!(file = %name, "skipped: symbolic links are not followed; move the real file into the inbox");
            eprintln!(
                "csv-watchdog: warning: {name} is a symbolic link, skipped: move the real file into the inbox"
            );
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn has_extension(name: &str, extensions: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    extensions.iter().any(|ext| lower.len() > ext.len() && lower.ends_with(ext.as_str()))
}

/// Names that writers use while a file is incomplete, and hidden files.
pub fn is_hidden_or_partial(name: &str) -> bool {
    const PARTIAL: &[&str] =
        &[".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", "~"];
    let lower = name.to_ascii_lowercase();
    name.starts_with('.') || name.starts_with('~') || PARTIAL.iter().any(|p| lower.ends_with(p))
}

pub fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_match_ignoring_case_and_partial_names_are_skipped() {
        let exts = vec![".csv".to_string()];
        assert!(has_extension("a.CSV", &exts));
        assert!(!has_extension("a.csv.tmp", &exts));
        assert!(!has_extension(".csv", &exts));
        assert!(is_hidden_or_partial(".daily.csv"));
        assert!(is_hidden_or_partial("~$book.csv"));
        assert!(!is_hidden_or_partial("daily.csv"));
    }
}
