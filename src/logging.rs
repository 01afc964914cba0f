//! Logging with `tracing`: a log file rotated by size, and the console when asked for.
//! `RUST_LOG` overrides the configured level.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::config::Settings;

/// Starts logging as the settings say. Failing to open the log file is not fatal: it is said
/// once on stderr and the run goes on.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("csv_watchdog={}", settings.log_level)));
    let file_layer = match RotatingFile::open(
        &settings.log_file,
        settings.log_max_bytes,
        settings.log_backup_count,
    ) {
        Ok(file) => Some(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(file)),
        Err(e) => {
            eprintln!(
                "csv-watchdog: warning: cannot open log file {}: {e}",
                settings.log_file.display()
            );
            None
        }
    };
    let console_layer =
        settings.log_to_console.then(|| tracing_subscriber::fmt::layer().with_writer(io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(console_layer)
        .try_init()
        .ok();
}

/// A log file that is renamed to `.1` (and older ones shifted up to `backups`) when it would
/// grow past `max_bytes`.
#[derive(Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<Rotating>>,
}

struct Rotating {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    backups: u32,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, backups: u32) -> io::Result<RotatingFile> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let rotating = Rotating { path: path.to_path_buf(), file, size, max_bytes, backups };
        Ok(RotatingFile { inner: Arc::new(Mutex::new(rotating)) })
    }
}

impl Rotating {
    fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.backups).rev() {
            let from = backup_name(&self.path, n);
            if from.exists() {
                fs::rename(&from, backup_name(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, backup_name(&self.path, 1))?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn backup_name(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.size > 0 && inner.size + buf.len() as u64 > inner.max_bytes {
            inner.rotate()?;
        }
        inner.file.write_all(buf)?;
        inner.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).file.flush()
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RotatingFile;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_the_configured_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.log");
        let mut log = RotatingFile::open(&path, 10, 2).unwrap();
        for line in ["aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"] {
            log.write_all(line.as_bytes()).unwrap();
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "dddddddd\n");
        assert_eq!(fs::read_to_string(backup_name(&path, 1)).unwrap(), "cccccccc\n");
        assert_eq!(fs::read_to_string(backup_name(&path, 2)).unwrap(), "bbbbbbbb\n");
        assert!(!backup_name(&path, 3).exists());
    }
}
