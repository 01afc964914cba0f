//! `csv-watchdog watch`: runs the main job again and again, for use without cron.

use std::time::Duration;

use anyhow::Result;

use crate::cmd::run::{self, RunArgs};
use crate::config::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Seconds to wait between runs
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub interval: f64,
    /// Print only the summary line of each run (and errors)
    #[arg(short, long)]
    pub quiet: bool,
}

/// Never returns on its own; stop it with Ctrl-C or a signal (a run killed midway is finished
/// by the next one). A run that cannot run (the lock held too long by another run, a store
/// error) is reported and tried again after the interval.
pub fn execute(settings: &Settings, args: &WatchArgs) -> Result<i32> {
    if !(args.interval.is_finite()
        && args.interval > 0.0
        && args.interval <= crate::config::MAX_WAIT_SECONDS)
    {
        anyhow::bail!("--interval must be a positive number of seconds, at most a day (86400)");
    }
    let run_args = RunArgs { dry_run: false, quiet: args.quiet };
    loop {
        if let Err(e) = run::execute(settings, &run_args) {
            tracing::error!("{e:#}");
            eprintln!("csv-watchdog: error: {e:#}; trying again in {} s", args.interval);
        }
        std::thread::sleep(Duration::from_secs_f64(args.interval));
    }
}
