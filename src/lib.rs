//! csv-watchdog: turns a folder of arriving CSV files into one trustworthy, queryable dataset.
//!
//! The binary (`src/main.rs`) only calls [`cli::main`]; the modules are a library so that the
//! fuzz targets and tests can reach the reader and validator directly.

pub mod archive;
pub mod checksum;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod error;
pub mod export;
pub mod fault;
pub mod inbox;
pub mod ingest;
pub mod lock;
pub mod logging;
pub mod output;
pub mod paths;
pub mod store;
