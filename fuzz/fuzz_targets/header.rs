#![no_main]
//! See `src/header.rs` for the input format and what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| csv_watchdog_fuzz::header::check(data));
