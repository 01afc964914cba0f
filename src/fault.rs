//! Fault injection for crash tests: `CSV_WATCHDOG_FAULT=<point>[:<n>]` makes the process abort
//! (like a SIGKILL: no destructors, no flushing) the n-th time (default first) it reaches the
//! named point. Unset, each point costs one relaxed atomic load.
//!
//! Points: `file-start`, `row` (after each written row), `before-commit`, `after-commit`,
//! `after-move`, `export-row` (after each exported row), `export-before-rename`,
//! `export-between` (master CSV renamed, metadata not yet), `after-export`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("CSV_WATCHDOG_FAULT").ok()?;
            let (point, nth) = match spec.split_once(':') {
                Some((point, nth)) => (point.to_string(), nth.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed { point, nth, seen: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Aborts the process if this point is armed and reached for the configured time.
pub fn point(name: &str) {
    if let Some(armed) = armed()
        && armed.point == name
        && armed.seen.fetch_add(1, Ordering::Relaxed) + 1 == armed.nth
    {
        std::process::abort();
    }
}
