//! Moving finished files out of the inbox: applied and duplicate files to the archive, rejected
//! files to the rejected folder with a small JSON file giving the reason.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::Timelike;
use serde::Serialize;

/// The start of the names of temporary files written in the archive and rejected folders.
pub const TEMP_PREFIX: &str = ".csv-watchdog-";

/// `<dir>/<name>.<YYYYmmddTHHMMSS.fff>` (UTC), with `.1`, `.2`… added if that name is
/// taken, so an archived file is never overwritten.
pub fn destination(dir: &Path, name: &str) -> PathBuf {
    let name = fit_name(name);
    let stamp = next_stamp().format("%Y%m%dT%H%M%S%.3f");
    let base = dir.join(format!("{name}.{stamp}"));
    let taken = |p: &Path| p.exists() || reason_path(p).exists();
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|n| dir.join(format!("{name}.{stamp}.{n}")))
        .find(|p| !taken(p))
        .expect("some suffix is free")
}

/// The stamp of the next archived name: the UTC time to the millisecond (UTC, so that a change
/// of time zone or of daylight saving time between runs cannot reorder stamps), but always later
/// than the stamp given before in this process, so that the stamps alone tell the order in
/// which files were applied (`rebuild` relies on it) even when several finish within one
/// millisecond. Runs take turns on the lock, so stamps of different runs are ordered too.
fn next_stamp() -> chrono::NaiveDateTime {
    static LAST: std::sync::Mutex<Option<chrono::NaiveDateTime>> = std::sync::Mutex::new(None);
    let now = chrono::Utc::now().naive_utc();
    let now = now.with_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(now);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let stamp = match *last {
        Some(previous) if now <= previous => previous + chrono::TimeDelta::milliseconds(1),
        _ => now,
    };
    *last = Some(stamp);
    stamp
}

/// The most bytes of the original name kept in an archived name, so that the stamp, a `.N`
/// suffix and a `.json` reason file still fit the usual 255-byte limit of a file name.
const MAX_NAME_BYTES: usize = 220;

/// The name cut to [`MAX_NAME_BYTES`] at a character boundary (the ledger keeps it whole).
fn fit_name(name: &str) -> &str {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The JSON file that sits next to a rejected file.
pub fn reason_path(rejected: &Path) -> PathBuf {
    crate::paths::with_suffix(rejected, ".json")
}

/// Moves a file, falling back to copy, sync and remove when the folders are on different file
/// systems. The destination folder is created if needed.
pub fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create folder {}: {e}", parent.display()))
        })?;
    }
    match fs::rename(from, to) {
        Ok(()) => sync_dir(to),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => copy_then_remove(from, to),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot move {} to {}: {e}", from.display(), to.display()),
        )),
    }
}

fn copy_then_remove(from: &Path, to: &Path) -> io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir)?;
    io::copy(&mut fs::File::open(from)?, tmp.as_file_mut())?;
    fs::set_permissions(tmp.path(), fs::metadata(from)?.permissions())?;
    tmp.as_file().sync_all()?;
    tmp.persist(to).map_err(|e| e.error)?;
    sync_dir(to)?;
    fs::remove_file(from)
}

/// Makes a rename durable by syncing the folder that holds the new name.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent()
        && let Ok(dir) = fs::File::open(parent)
    {
        dir.sync_all().ok();
    }
    Ok(())
}

/// The reason a file was rejected, as written next to it.
#[derive(Debug, Serialize)]
pub struct Reason<'a> {
    pub file: &'a str,
    pub checksum: &'a str,
    pub rule: &'a str,
    pub line: Option<i64>,
    pub column: Option<&'a str>,
    pub message: &'a str,
    pub rejected_at: &'a str,
}

/// Writes the reason JSON next to `rejected`, atomically.
pub fn write_reason(rejected: &Path, reason: &Reason) -> io::Result<()> {
    let path = reason_path(rejected);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir)?;
    serde_json::to_writer_pretty(tmp.as_file_mut(), reason)?;
    tmp.as_file_mut().write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

/// A file found in the archive: its original name and the order it was archived in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Archived {
    pub stamp: String,
    pub suffix: u32,
    pub name: String,
    pub path: PathBuf,
}

/// Splits `<name>.<YYYYmmddTHHMMSS.fff>[.<n>]` into (name, stamp, n).
pub fn parse_archived_name(file_name: &str) -> Option<(String, String, u32)> {
    let is_stamp = |s: &str| {
        let b = s.as_bytes();
        b.len() == 19
            && b[8] == b'T'
            && b[15] == b'.'
            && b.iter().enumerate().all(|(i, c)| i == 8 || i == 15 || c.is_ascii_digit())
    };
    let split = |text: &str| -> Option<(String, String)> {
        if text.len() < 21 || !text.is_char_boundary(text.len() - 20) {
            return None;
        }
        let (head, stamp) = text.split_at(text.len() - 19);
        let name = head.strip_suffix('.')?;
        (is_stamp(stamp) && !name.is_empty()).then(|| (name.to_string(), stamp.to_string()))
    };
    if let Some((name, stamp)) = split(file_name) {
        return Some((name, stamp, 0));
    }
    let (rest, n) = file_name.rsplit_once('.')?;
    let n: u32 = n.parse().ok().filter(|_| n.bytes().all(|b| b.is_ascii_digit()))?;
    let (name, stamp) = split(rest)?;
    Some((name, stamp, n))
}

/// The archived files of `dir`, in the order they were archived.
pub fn list_archived(dir: &Path) -> io::Result<Vec<Archived>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let is_reason =
            file_name.strip_suffix(".json").is_some_and(|stem| parse_archived_name(stem).is_some());
        if file_name.starts_with('.') || is_reason || !entry.file_type()?.is_file() {
            continue;
        }
        match parse_archived_name(&file_name) {
            Some((name, stamp, suffix)) => {
                found.push(Archived { stamp, suffix, name, path: entry.path() })
            }
            None => tracing::warn!(file = %file_name, "not an archived file name; left alone"),
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_is_cut_so_the_archived_name_fits() {
        let name = format!("{}.csv", "é".repeat(200));
        let dest = destination(Path::new("/a"), &name);
        let file = dest.file_name().unwrap().to_string_lossy().into_owned();
        assert!(file.len() + ".json".len() <= 255, "{}", file.len());
        assert!(file.starts_with(&"é".repeat(110)));
    }

    #[test]
    fn archived_names_give_back_the_name_stamp_and_suffix() {
        let p = parse_archived_name;
        assert_eq!(
            p("a.csv.20261204T160420.111"),
            Some(("a.csv".into(), "20261204T160420.111".into(), 0))
        );
        assert_eq!(
            p("a.csv.20261204T160420.111.2"),
            Some(("a.csv".into(), "20261204T160420.111".into(), 2))
        );
        assert_eq!(p("x.20261204T160420.111.json"), None);
        assert_eq!(p("20261204T160420.111"), None);
        assert_eq!(p("notes.txt"), None);
    }
}
