//! The `csv-watchdog` binary: everything happens in the library's `cli` module.

fn main() -> std::process::ExitCode {
    csv_watchdog::cli::main()
}
