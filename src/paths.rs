//! Small path helpers shared by the config checks, the archive and the store.

use std::io;
use std::path::{Path, PathBuf};

/// The store file and the files SQLite keeps beside it in WAL mode, as suffixes of its name.
pub const STORE_SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

/// `path` with `suffix` added to its file name: `x.db` and `-wal` give `x.db-wal`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a store file and its WAL and shared-memory files; missing ones are fine.
pub fn remove_store_files(store: &Path) -> io::Result<()> {
    for suffix in STORE_SUFFIXES {
        let file = with_suffix(store, suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot remove {}: {e}", file.display()),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
