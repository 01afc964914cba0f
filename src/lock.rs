//! The run lock: one exclusive lock on `lock_file`, so that overlapping runs never interleave.
//! The operating system releases it when the process ends, however it ends, so a lock can
//! never be left stale by a dead process.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock, waiting up to `timeout_seconds` for another run to finish.
pub fn acquire(path: &Path, timeout_seconds: f64) -> Result<RunLock, String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_seconds);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "another csv-watchdog run holds the lock {} and did not finish within {timeout_seconds} s \
                 (lock_timeout_seconds); try again later",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
