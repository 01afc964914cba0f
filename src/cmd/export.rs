//! `csv-watchdog export`: writes the master CSV and the metadata JSON from the store on demand.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::config::{self, Settings};
use crate::error::exit;
use crate::export;
use crate::store;

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Where to write the master CSV [default: merged_file from the config]
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Where to write the metadata JSON [default: metadata_file from the config]
    #[arg(long, value_name = "PATH")]
    pub metadata: Option<PathBuf>,
}

pub fn execute(settings: &Settings, args: &ExportArgs) -> Result<i32> {
    let Some(conn) = store::open_read_only(&settings.store_file)? else {
        bail!(
            "there is no store at {} yet; run `csv-watchdog run` first",
            settings.store_file.display()
        );
    };
    let output =
        args.output.as_deref().map_or_else(|| settings.merged_file.clone(), config::absolute);
    let metadata =
        args.metadata.as_deref().map_or_else(|| settings.metadata_file.clone(), config::absolute);
    let report = export::export(&conn, settings, &output, &metadata)?;
    crate::cmd::say(&format!(
        "wrote {} ({} rows, {} columns, xxh3-128 {}) and {}",
        output.display(),
        report.rows,
        report.columns.len(),
        report.checksum,
        metadata.display()
    ));
    Ok(exit::OK)
}
