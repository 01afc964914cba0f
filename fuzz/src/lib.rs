//! The checks behind the fuzz targets, kept in a library so that the same code runs under
//! libFuzzer (`fuzz_targets/`) and in
//! any other harness that wants them.
//!
//! Every check takes arbitrary bytes and panics only when csv-watchdog breaks a promise: a panic
//! of its own, a raw store or I/O error for an input file, or an answer that contradicts itself.

pub mod apply;
pub mod header;
pub mod read;

use std::io::{self, Read};

/// A byte source that hands out its bytes in small pieces of pseudo-random size, so that every
/// chunk boundary the reader must cope with (inside a UTF-8 character, between CR and LF, just
/// after a quote) gets exercised.
///
/// The first piece is at least 4 bytes, as the first read of a regular file is (it fills the
/// buffer): the `csv` crate strips a UTF-8 byte-order mark only when its first read holds all of
/// it, and takes a first read of exactly the mark for the end of the file.
pub struct Chunked {
    bytes: Vec<u8>,
    at: usize,
    state: u32,
    most: u32,
}

impl Chunked {
    pub fn new(bytes: Vec<u8>, seed: u8) -> Chunked {
        let most = [1, 2, 3, 5, 8, 64, 4096][usize::from(seed) % 7];
        Chunked { bytes, at: 0, state: u32::from(seed).wrapping_mul(2_654_435_761) | 1, most }
    }

    fn next_size(&mut self) -> usize {
        // xorshift32: cheap, deterministic, good enough to vary the chunk sizes.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        (self.state % self.most) as usize + 1
    }
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let least = if self.at == 0 { 4 } else { 1 };
        let n = self.next_size().max(least).min(buf.len()).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The delimiters a config may set, picked by two bits.
pub fn delimiter(bits: u8) -> u8 {
    [b',', b';', b'\t', b'|'][usize::from(bits & 3)]
}
