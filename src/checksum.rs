//! XXH3-128 checksums of whole files, written as `xxhsum -H2` prints them.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use xxhash_rust::xxh3::Xxh3;

/// The XXH3-128 hash of a file's raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum(pub u128);

impl Checksum {
    #[cfg(test)]
    pub fn of_bytes(bytes: &[u8]) -> Checksum {
        Checksum(xxhash_rust::xxh3::xxh3_128(bytes))
    }

    /// Hashes a file in fixed-size chunks, never holding it whole.
    pub fn of_file(path: &Path) -> io::Result<Checksum> {
        let mut file = File::open(path)?;
        let mut hasher = Xxh3::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
        }
        Ok(Checksum(hasher.digest128()))
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for Checksum {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Checksum, Self::Err> {
        u128::from_str_radix(s, 16).map(Checksum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_xxhsum_h2_does() {
        // `printf 'abc' | xxhsum -H2` prints 06b05ab6733a618578af5f94892f3950.
        assert_eq!(Checksum::of_bytes(b"abc").to_string(), "06b05ab6733a618578af5f94892f3950");
    }
}
