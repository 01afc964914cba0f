//! The subcommands, one file each: arguments first, then `execute`.

pub mod export;
pub mod files;
pub mod history;
pub mod query;
pub mod rebuild;
pub mod run;
pub mod status;
pub mod verify;
pub mod watch;

use std::io::Write;

/// Prints a line for the user on stdout; a closed pipe (`| head`) is not an error.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}
