//! Moving finished files out of the inbox: applied and duplicate files to the archive, rejected
//! files to the rejected folder with a small JSON file giving the reason.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// `<dir>/<name>.<YYYYmmddTHHMMSS.fff>`, with `.1`, `.2`… added if that name is taken, so an
/// archived file is never overwritten. `reserved` holds destinations promised but not yet used.
pub fn destination(dir: &Path, name: &str, reserved: &dyn Fn(&Path) -> bool) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
    let base = dir.join(format!("{name}.{stamp}"));
    let taken = |p: &Path| p.exists() || reserved(p) || reason_path(p).exists();
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|n| dir.join(format!("{name}.{stamp}.{n}")))
        .find(|p| !taken(p))
        .expect("some suffix is free")
}

/// The JSON file that sits next to a rejected file.
pub fn reason_path(rejected: &Path) -> PathBuf {
    let mut name = rejected.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
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
    let mut tmp = tempfile::Builder::new().prefix(".csv-watchdog-").tempfile_in(dir)?;
    io::copy(&mut fs::File::open(from)?, tmp.as_file_mut())?;
    fs::set_permissions(tmp.path(), fs::metadata(from)?.permissions())?;
    tmp.as_file().sync_all()?;
    tmp.persist(to).map_err(|e| e.error)?;
    sync_dir(to)?;
    fs::remove_file(from)
}

/// Makes a rename durable by syncing the folder that holds the new name.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        if let Ok(dir) = fs::File::open(parent) {
            dir.sync_all().ok();
        }
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
    let mut tmp = tempfile::Builder::new().prefix(".csv-watchdog-").tempfile_in(dir)?;
    serde_json::to_writer_pretty(tmp.as_file_mut(), reason)?;
    tmp.as_file_mut().write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}
