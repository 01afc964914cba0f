//! The command line: parses it, loads the config into one validated `Settings`, starts logging,
//! and dispatches to the subcommand. Exit statuses are decided here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::exit;
use crate::{cmd, config, logging};

/// Merges CSV files arriving in an inbox folder into a SQLite store, archives them, and writes
/// a master CSV and a metadata JSON.
///
/// Without a subcommand, runs the main job once (like `run`), so cron lines written for the old
/// script keep working. Exit status: 0 all went well, 2 at least one file was rejected or could
/// not be read, 1 the tool could not run (config, lock, store, usage).
#[derive(Debug, Parser)]
#[command(name = "csv-watchdog", version)]
struct Cli {
    /// The config file [default: $CSV_MONITOR_CONFIG, else ./config.json]
    #[arg(long, short, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: cmd::run::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply every stable file in the inbox, archive it, and refresh the master CSV (the default)
    Run(cmd::run::RunArgs),
    /// Write the master CSV and the metadata JSON from the store
    Export(cmd::export::ExportArgs),
    /// Run the main job every few seconds until stopped
    Watch(cmd::watch::WatchArgs),
    /// Run read-only SQL on the store (the data is the `records` view)
    Query(cmd::query::QueryArgs),
    /// Show the versions of one row, or which file set each of its values (--blame)
    History(cmd::history::HistoryArgs),
    /// List the files seen (the ledger), or show one with `files show NAME-or-ID`
    Files(cmd::files::FilesArgs),
    /// Summarise the store, the last run, the inbox and the exports
    Status(cmd::status::StatusArgs),
    /// Check the store, the archive, the rejected folder and the exports against each other
    Verify(cmd::verify::VerifyArgs),
    /// Build a new store from the archived files alone (for a lost or corrupt store)
    Rebuild(cmd::rebuild::RebuildArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::FAILURE as u8
            } else {
                exit::OK as u8
            });
        }
    };
    ExitCode::from(run(cli) as u8)
}

fn run(cli: Cli) -> i32 {
    let config_path = config::locate(cli.config.as_deref());
    let settings = match config::load(&config_path) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("csv-watchdog: config error: {e}");
            return exit::FAILURE;
        }
    };
    logging::init(&settings);
    if cli.command.as_ref().is_some_and(|c| !matches!(c, Command::Run(_)))
        && (cli.run.dry_run || cli.run.quiet)
    {
        eprintln!(
            "csv-watchdog: --dry-run and --quiet before a subcommand go with `run` only; put them after the subcommand if it has them"
        );
        return exit::FAILURE;
    }
    let result = match &cli.command {
        None => cmd::run::execute(&settings, &cli.run),
        Some(Command::Run(args)) => {
            let args = cmd::run::RunArgs {
                dry_run: args.dry_run || cli.run.dry_run,
                quiet: args.quiet || cli.run.quiet,
            };
            cmd::run::execute(&settings, &args)
        }
        Some(Command::Export(args)) => cmd::export::execute(&settings, args),
        Some(Command::Watch(args)) => cmd::watch::execute(&settings, args),
        Some(Command::Query(args)) => cmd::query::execute(&settings, args),
        Some(Command::History(args)) => cmd::history::execute(&settings, args),
        Some(Command::Files(args)) => cmd::files::execute(&settings, args),
        Some(Command::Status(args)) => cmd::status::execute(&settings, args),
        Some(Command::Verify(args)) => cmd::verify::execute(&settings, args),
        Some(Command::Rebuild(args)) => cmd::rebuild::execute(&settings, args),
    };
    match result {
        Ok(status) => status,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("csv-watchdog: error: {e:#}");
            exit::FAILURE
        }
    }
}
