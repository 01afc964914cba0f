//! Streaming an input file: checks every byte once as it passes (UTF-8, NUL, UTF-16 byte-order
//! marks), hashes it, counts physical lines, and hands CSV records to the caller one at a time.
//!
//! Physical lines are counted here rather than by the CSV parser because a line break can be LF,
//! CRLF or a lone CR, and because a quoted field may span several lines: the line of a record
//! is the line where it starts. Only the line starts between the record being handed out and the
//! parser's read-ahead are kept, so memory does not grow with the file.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use xxhash_rust::xxh3::Xxh3;

use crate::checksum::Checksum;
use crate::error::{InputError, Rule};

/// What the byte checker has learnt so far, shared between it and the record reader.
struct ByteScan {
    offset: u64,
    /// Line starts not yet asked for. A run of empty lines is kept as one entry, so blank
    /// lines cost no memory however many there are.
    line_starts: VecDeque<LineStart>,
    /// How many line starts were already consumed by `line_of`.
    lines_before: u64,
    /// Every line start seen so far, for placing byte-level faults.
    lines_seen: u64,
    pending_cr: bool,
    /// Bytes of a UTF-8 sequence cut by the end of the last chunk.
    utf8_tail: Vec<u8>,
    fault: Option<InputError>,
    hasher: Xxh3,
    delimiter: u8,
    bom: bool,
    /// Inside a quoted field, as the CSV parser would be.
    in_quotes: bool,
    /// A quote inside a quoted field ended the last chunk: the next byte says whether it closed.
    quote_pending: bool,
    quote_opened_at: u64,
    prev_byte: Option<u8>,
}

impl ByteScan {
    fn new(delimiter: u8) -> ByteScan {
        ByteScan {
            delimiter,
            bom: false,
            in_quotes: false,
            quote_pending: false,
            quote_opened_at: 0,
            prev_byte: None,
            offset: 0,
            line_starts: VecDeque::new(),
            lines_before: 0,
            lines_seen: 0,
            pending_cr: false,
            utf8_tail: Vec::new(),
            fault: None,
            hasher: Xxh3::new(),
        }
    }

    /// The 1-based physical line of a record whose parse started at `offset`. The CSV parser
    /// starts a record right after the previous record's terminator byte, so the blank lines and
    /// the LF of a CRLF that come before the record are skipped here. Offsets must not go
    /// backwards.
    fn line_of(&mut self, offset: u64) -> u64 {
        let mut at = offset;
        while let Some(&LineStart { start, break_start, count }) = self.line_starts.front() {
            if start <= at || break_start <= at {
                self.line_starts.pop_front();
                self.lines_before += count;
                at = at.max(start);
            } else {
                break;
            }
        }
        self.lines_before + 1
    }

    /// Records a line start; a line that ends where it began (an empty line) joins the entry
    /// of the line start before it.
    fn push_line_start(starts: &mut VecDeque<LineStart>, start: u64, break_start: u64) {
        match starts.back_mut() {
            Some(last) if last.start == break_start => {
                last.start = start;
                last.count += 1;
            }
            _ => starts.push_back(LineStart { start, break_start, count: 1 }),
        }
    }

    /// The line of a byte at `index` in `chunk`, which is being scanned and not yet recorded.
    fn line_in_chunk(&self, chunk: &[u8], index: usize) -> u64 {
        let mut scratch = LineCounter { pending_cr: self.pending_cr, starts: 0 };
        scratch.feed(&chunk[..index], 0, |_, _| {});
        // A CR just before the byte in question ended a line (that byte is not an LF).
        let cr_before = u64::from(scratch.pending_cr && chunk.get(index) != Some(&b'\n'));
        self.lines_seen + scratch.starts + cr_before + 1
    }

    /// Checks, hashes and line-counts a chunk; returns how many of its bytes come before the
    /// first fault (all of them when there is none), so the parser sees the file up to the fault
    /// and the fault is placed in the record that holds it.
    fn scan(&mut self, chunk: &[u8]) -> usize {
        self.hasher.update(chunk);
        if self.offset == 0 {
            self.bom = chunk.starts_with(&[0xEF, 0xBB, 0xBF]);
        }
        let (mut valid, mut fault) = self.find_fault(chunk);
        if let Some((index, error)) = self.track_quotes(&chunk[..valid]) {
            (valid, fault) = (index, Some(error));
        } else if self.quote_pending && fault.is_some() {
            // A closing quote right before a bad byte: the bad byte is text after the quote
            // first, whichever way the bytes were cut into reads.
            self.quote_pending = false;
            fault = Some(self.after_quote_error(valid));
        }
        let good = &chunk[..valid];
        let mut counter = LineCounter { pending_cr: self.pending_cr, starts: 0 };
        let starts = &mut self.line_starts;
        counter.feed(good, self.offset, |start, break_start| {
            ByteScan::push_line_start(starts, start, break_start)
        });
        self.offset += valid as u64;
        if fault.is_some() && counter.pending_cr {
            // The byte after that CR is the faulty one, not an LF: the CR ended a line.
            ByteScan::push_line_start(&mut self.line_starts, self.offset, self.offset - 1);
            counter.starts += 1;
            counter.pending_cr = false;
        }
        self.pending_cr = counter.pending_cr;
        self.lines_seen += counter.starts;
        self.fault = fault;
        valid
    }

    /// The first byte-level fault in `chunk`: where it is and what it is.
    fn find_fault(&mut self, chunk: &[u8]) -> (usize, Option<InputError>) {
        if self.offset == 0
            && (chunk.starts_with(&[0xFF, 0xFE]) || chunk.starts_with(&[0xFE, 0xFF]))
        {
            let error = InputError::new(
                Rule::Encoding,
                "the file is UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8; \
                 save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)",
            );
            return (0, Some(error));
        }
        let little = chunk.len() >= 4 && chunk[1] == 0 && chunk[3] == 0;
        let big = chunk.len() >= 4 && chunk[0] == 0 && chunk[2] == 0;
        if self.offset == 0 && (little || big) {
            let error = InputError::new(
                Rule::Encoding,
                "the file looks like UTF-16 or UTF-32 (NUL bytes between the characters), not \
                 UTF-8; save it as UTF-8 (e.g. iconv -f UTF-16LE -t UTF-8, or the encoding it has)",
            );
            return (0, Some(error));
        }
        let nul = memchr::memchr(0, chunk);
        let scope = &chunk[..nul.unwrap_or(chunk.len())];
        let tail_before = self.utf8_tail.len() as u64;
        if let Err(index) = self.check_utf8(scope) {
            let carried = if index == 0 { tail_before } else { 0 };
            let at = self.offset + index as u64 - carried;
            let line = self.line_in_chunk(chunk, index);
            let message = format!(
                "not valid UTF-8 at byte offset {at} (physical line {line}); save the file as UTF-8"
            );
            return (index, Some(InputError::new(Rule::Encoding, message)));
        }
        match nul {
            Some(index) => {
                let at = self.offset + index as u64;
                let line = self.line_in_chunk(chunk, index);
                let message = format!(
                    "NUL byte (0x00) at byte offset {at} (physical line {line}); CSV text cannot hold NUL"
                );
                (index, Some(InputError::new(Rule::NulByte, message)))
            }
            None => (chunk.len(), None),
        }
    }

    /// Follows quoting as the CSV parser does, to notice what it would silently accept: a
    /// quoted field that never closes, and text after a closing quote (`"x"y`, which the parser
    /// would turn into `xy`). A quote opens a field only at the start of a field; inside, `""`
    /// is a quote and a lone `"` closes it. Returns the index of an offending byte, if any.
    fn track_quotes(&mut self, chunk: &[u8]) -> Option<(usize, InputError)> {
        let mut skip_until = 0;
        if self.quote_pending && !chunk.is_empty() {
            self.quote_pending = false;
            match chunk[0] {
                b'"' => skip_until = 1,
                b => {
                    self.in_quotes = false;
                    if !self.ends_field(b) {
                        return Some((0, self.after_quote_error(0)));
                    }
                }
            }
        }
        for index in memchr::memchr_iter(b'"', chunk) {
            if index < skip_until {
                continue;
            }
            if self.in_quotes {
                match chunk.get(index + 1) {
                    // An escaped quote: the next byte is consumed with this one.
                    Some(b'"') => skip_until = index + 2,
                    Some(&b) if self.ends_field(b) => self.in_quotes = false,
                    Some(_) => return Some((index + 1, self.after_quote_error(index + 1))),
                    None => self.quote_pending = true,
                }
            } else if self.opens_field(chunk, index) {
                self.in_quotes = true;
                self.quote_opened_at = self.offset + index as u64;
            }
        }
        if let Some(&last) = chunk.last() {
            self.prev_byte = Some(last);
        }
        None
    }

    fn ends_field(&self, byte: u8) -> bool {
        byte == self.delimiter || byte == b'\n' || byte == b'\r'
    }

    fn after_quote_error(&self, index: usize) -> InputError {
        let at = self.offset + index as u64;
        InputError::new(
            Rule::Malformed,
            format!(
                "text after the closing quote of a quoted field, at byte offset {at}; \
                 a quote inside a quoted field must be doubled (\"\")"
            ),
        )
    }

    fn opens_field(&self, chunk: &[u8], index: usize) -> bool {
        let at = self.offset + index as u64;
        let before = if index > 0 { Some(chunk[index - 1]) } else { self.prev_byte };
        let after_bom = at == 3 && self.bom;
        match before {
            None => true,
            Some(_) if after_bom => true,
            Some(b) => b == self.delimiter || b == b'\n' || b == b'\r',
        }
    }

    /// Validates `chunk` as the continuation of the UTF-8 text so far. On failure, the index in
    /// `chunk` where the bad sequence starts (0 when it began in the previous chunk).
    fn check_utf8(&mut self, chunk: &[u8]) -> Result<(), usize> {
        let mut rest = chunk;
        if !self.utf8_tail.is_empty() {
            let need = utf8_len(self.utf8_tail[0]).saturating_sub(self.utf8_tail.len());
            let take = need.min(rest.len());
            self.utf8_tail.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            match std::str::from_utf8(&self.utf8_tail) {
                Ok(_) => self.utf8_tail.clear(),
                Err(e) if e.error_len().is_none() && rest.is_empty() => return Ok(()),
                Err(_) => return Err(0),
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                self.utf8_tail.extend_from_slice(&rest[e.valid_up_to()..]);
                Ok(())
            }
            Err(e) => Err(chunk.len() - rest.len() + e.valid_up_to()),
        }
    }

    fn finish(&mut self) {
        if !self.utf8_tail.is_empty() && self.fault.is_none() {
            let at = self.offset - self.utf8_tail.len() as u64;
            self.fault = Some(
                InputError::new(
                    Rule::Encoding,
                    format!(
                        "not valid UTF-8 at byte offset {at} (the file ends inside a character)"
                    ),
                )
                .at_line(self.lines_seen + 1),
            );
        }
        if self.in_quotes && !self.quote_pending && self.fault.is_none() {
            let message = format!(
                "the quoted field opened at byte offset {} never closes (a stray or missing quote, \
                 or the file was cut short)",
                self.quote_opened_at
            );
            self.fault = Some(InputError::new(Rule::Malformed, message));
        }
    }
}

/// Where a line starts, where the line break before it starts, and how many line starts the
/// entry stands for (more than one for a run of empty lines, `start` being the last of them).
#[derive(Debug, Clone, Copy)]
struct LineStart {
    start: u64,
    break_start: u64,
    count: u64,
}

/// The byte length of a UTF-8 sequence from its first byte (1 for a bad lead byte).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// Finds line starts: after LF, after CRLF, and after a lone CR.
struct LineCounter {
    pending_cr: bool,
    starts: u64,
}

impl LineCounter {
    /// Calls `on_start(line_start, break_start)` for each line start in `chunk`, which begins at
    /// file offset `base`.
    fn feed(&mut self, chunk: &[u8], base: u64, mut on_start: impl FnMut(u64, u64)) {
        if chunk.is_empty() {
            return;
        }
        let cr_before = self.pending_cr;
        if cr_before && chunk[0] != b'\n' {
            self.starts += 1;
            on_start(base, base.saturating_sub(1));
        }
        self.pending_cr = false;
        for index in memchr::memchr2_iter(b'\n', b'\r', chunk) {
            let at = base + index as u64;
            if chunk[index] == b'\n' {
                let after_cr = if index == 0 { cr_before } else { chunk[index - 1] == b'\r' };
                self.starts += 1;
                on_start(at + 1, if after_cr { at.saturating_sub(1) } else { at });
            } else if index + 1 == chunk.len() {
                self.pending_cr = true;
            } else if chunk[index + 1] != b'\n' {
                self.starts += 1;
                on_start(at + 1, at);
            }
        }
    }
}

/// A `Read` that runs every byte through a [`ByteScan`] before the CSV parser sees it.
struct CheckedRead<R> {
    inner: R,
    scan: Rc<RefCell<ByteScan>>,
}

impl<R: Read> Read for CheckedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fault = || io::Error::new(io::ErrorKind::InvalidData, "input fault");
        if self.scan.borrow().fault.is_some() {
            return Err(fault());
        }
        let n = self.inner.read(buf)?;
        let mut scan = self.scan.borrow_mut();
        if n == 0 {
            scan.finish();
            return if scan.fault.is_some() { Err(fault()) } else { Ok(0) };
        }
        // The bytes before a fault go to the parser; the fault itself comes with the next read.
        match scan.scan(&buf[..n]) {
            0 if scan.fault.is_some() => Err(fault()),
            valid => Ok(valid),
        }
    }
}

/// Why reading a file stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The file breaks a rule: reject it.
    Input(InputError),
    /// The file could not be read: leave it where it is.
    Io(io::Error),
}

impl From<InputError> for ReadError {
    fn from(e: InputError) -> ReadError {
        ReadError::Input(e)
    }
}

/// One data record, borrowed from the reader until the next call.
pub struct Record<'a> {
    pub line: u64,
    pub fields: Vec<&'a str>,
}

/// An input file being read record by record.
pub struct CsvFile {
    reader: csv::Reader<CheckedRead<Box<dyn Read>>>,
    scan: Rc<RefCell<ByteScan>>,
    record: csv::ByteRecord,
    /// Where the parse of the next record starts: right after the last record handed out.
    next_start: u64,
}

impl CsvFile {
    pub fn open(path: &Path, delimiter: u8) -> io::Result<CsvFile> {
        Ok(CsvFile::from_reader(File::open(path)?, delimiter))
    }

    /// Reads from any byte source, as [`CsvFile::open`] reads a file; the fuzz targets use it to
    /// feed bytes in chunks of their choosing.
    pub fn from_reader(source: impl Read + 'static, delimiter: u8) -> CsvFile {
        let scan = Rc::new(RefCell::new(ByteScan::new(delimiter)));
        let inner: Box<dyn Read> = Box::new(source);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(64 * 1024)
            .from_reader(CheckedRead { inner, scan: Rc::clone(&scan) });
        CsvFile { reader, scan, record: csv::ByteRecord::new(), next_start: 0 }
    }

    /// The next record with its starting line, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => {
                // The parser may take a fault for the end of the file (a BOM alone, then a
                // bad byte): the fault still wins.
                let mut scan = self.scan.borrow_mut();
                if let Some(fault) = scan.fault.take() {
                    let line = scan.line_of(self.next_start);
                    return Err(ReadError::Input(fault.at_line(line)));
                }
                return Ok(None);
            }
            Err(e) => return Err(self.convert(e)),
        }
        let start = self.record.position().map_or(0, |p| p.byte());
        self.next_start = self.reader.position().byte();
        let line = self.scan.borrow_mut().line_of(start);
        let mut fields = Vec::with_capacity(self.record.len());
        for (index, raw) in self.record.iter().enumerate() {
            let text = std::str::from_utf8(raw).map_err(|_| {
                InputError::new(Rule::Encoding, "field is not valid UTF-8")
                    .at_line(line)
                    .at_column(index + 1, "")
            })?;
            fields.push(text);
        }
        Ok(Some(Record { line, fields }))
    }

    fn convert(&self, e: csv::Error) -> ReadError {
        let mut scan = self.scan.borrow_mut();
        if let Some(fault) = scan.fault.take() {
            // The record being parsed holds the fault: name the line where it starts.
            let line = scan.line_of(self.next_start);
            return ReadError::Input(fault.at_line(line));
        }
        drop(scan);
        match e.into_kind() {
            csv::ErrorKind::Io(io) => ReadError::Io(io),
            other => ReadError::Input(InputError::new(Rule::Malformed, format!("{other:?}"))),
        }
    }

    /// The checksum of every byte read; call after `next_record` returned `None`.
    pub fn checksum(&self) -> Checksum {
        Checksum(self.scan.borrow().hasher.digest128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn records(bytes: &[u8]) -> Result<Vec<(u64, Vec<String>)>, ReadError> {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let mut file = CsvFile::open(tmp.path(), b',').unwrap();
        let mut out = Vec::new();
        while let Some(rec) = file.next_record()? {
            out.push((rec.line, rec.fields.iter().map(|f| f.to_string()).collect()));
        }
        Ok(out)
    }

    fn lines(bytes: &[u8]) -> Vec<u64> {
        records(bytes).unwrap().into_iter().map(|(line, _)| line).collect()
    }

    #[test]
    fn counts_physical_lines_for_lf_crlf_and_lone_cr() {
        assert_eq!(lines(b"a,b\nc,d\ne,f\n"), vec![1, 2, 3]);
        assert_eq!(lines(b"a,b\r\nc,d\r\n\r\ne,f\r\n"), vec![1, 2, 4]);
        assert_eq!(lines(b"a,b\rc,d\re,f"), vec![1, 2, 3]);
        assert_eq!(lines(b"\n\na,b\n\n\nc,d\n"), vec![3, 6]);
        assert_eq!(lines(b"a,b\r\rc,d\r\r\r\ne,f"), vec![1, 3, 6]);
        assert_eq!(lines(b"\xEF\xBB\xBFa,b\r\n,\r\nc,d\r\n"), vec![1, 2, 3]);
    }

    #[test]
    fn a_quoted_line_break_keeps_the_start_line_of_its_record() {
        let got = records(b"k,v\nx,\"one\ntwo\"\ny,z\n").unwrap();
        assert_eq!(got[1], (2, vec!["x".to_string(), "one\ntwo".to_string()]));
        assert_eq!(got[2].0, 4);
    }

    #[test]
    fn invalid_utf8_names_line_and_byte_offset() {
        let Err(ReadError::Input(e)) = records(b"k,v\nx,1\ny,caf\xe9\n") else { panic!() };
        assert_eq!(e.rule, Rule::Encoding);
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("byte offset 13"), "{}", e.message);
    }

    #[test]
    fn nul_byte_names_its_line() {
        let Err(ReadError::Input(e)) = records(b"k,v\nx,1\ny,\x00\n") else { panic!() };
        assert_eq!((e.rule, e.line), (Rule::NulByte, Some(3)));
    }

    #[test]
    fn a_fault_inside_a_multi_line_field_names_the_line_where_the_record_starts() {
        let Err(ReadError::Input(e)) = records(b"k,v\nx,\"one\ncaf\xe9\"\n") else { panic!() };
        assert_eq!((e.rule, e.line), (Rule::Encoding, Some(2)));
        assert!(e.message.contains("physical line 3"), "{}", e.message);
        let Err(ReadError::Input(e)) = records(b"k,v\ny,1\nx,\"a\nb\x00\"\n") else { panic!() };
        assert_eq!((e.rule, e.line), (Rule::NulByte, Some(3)));
    }

    #[test]
    fn a_quoted_field_that_never_closes_is_malformed_at_its_record() {
        let Err(ReadError::Input(e)) = records(b"k,v\nx,\"abc\ny,2\nz,3\n") else { panic!() };
        assert_eq!((e.rule, e.line), (Rule::Malformed, Some(2)));
        assert!(e.message.contains("byte offset 6"), "{}", e.message);
    }

    #[test]
    fn quotes_inside_fields_and_escaped_quotes_are_not_unclosed() {
        let got = records(b"k,v\nx,5\" screen\ny,\"say \"\"hi\"\"\"\n").unwrap();
        assert_eq!(got[1].1[1], "5\" screen");
        assert_eq!(got[2].1[1], "say \"hi\"");
    }

    #[test]
    fn a_bad_byte_right_after_a_closing_quote_is_malformed_however_the_reads_fall() {
        let Err(ReadError::Input(e)) = records(b"k,v\nz,\"a\"\xd4\xdd\n") else { panic!() };
        assert_eq!((e.rule, e.line), (Rule::Malformed, Some(2)));
        assert!(e.message.contains("byte offset 9"), "{}", e.message);
    }

    #[test]
    fn text_after_a_closing_quote_is_malformed_not_silently_joined() {
        let Err(ReadError::Input(e)) = records(b"k,v\nw,1\nz,\"a\"b\n") else { panic!() };
        assert_eq!((e.rule, e.line), (Rule::Malformed, Some(3)));
        assert!(e.message.contains("byte offset 13"), "{}", e.message);
        let Err(ReadError::Input(e)) = records(b"k,v\nq,\"a\" \n") else { panic!() };
        assert_eq!(e.rule, Rule::Malformed);
    }

    #[test]
    fn a_character_cut_at_end_of_file_is_an_encoding_error() {
        let Err(ReadError::Input(e)) = records(b"k,v\nx,\xe2\x82") else { panic!() };
        assert_eq!((e.rule, e.line), (Rule::Encoding, Some(2)));
    }

    #[test]
    fn checksum_covers_the_raw_bytes_bom_included() {
        let bytes = b"\xEF\xBB\xBFk,v\r\nx,1\r\n";
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let mut file = CsvFile::open(tmp.path(), b',').unwrap();
        while file.next_record().unwrap().is_some() {}
        assert_eq!(file.checksum(), Checksum::of_bytes(bytes));
    }
}
