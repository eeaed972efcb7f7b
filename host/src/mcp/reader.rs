//! Bounded newline-delimited reader for the stdio transport.
//!
//! Each message is one line. A line longer than the limit is not buffered:
//! its first bytes are kept up to the limit, the rest is read and thrown
//! away until the next newline, and the caller gets [`Line::TooLong`] so it
//! can answer with an error and go on serving the next line. While the line
//! is discarded, an [`IdScan`] watches it stream past for the request's
//! top-level `id`, so the error can carry it. Memory stays bounded by
//! `max_line` plus the reader's own buffer whatever the peer sends.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::id_scan::IdScan;

/// One unit read from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its terminator (`\n` or `\r\n`).
    Data(Vec<u8>),
    /// A line of `len` bytes (terminator excluded) that exceeded the limit;
    /// it was discarded. `id` is the JSON text of its top-level `id` value,
    /// when it had one short enough to keep (see [`IdScan`]).
    TooLong { len: u64, id: Option<Vec<u8>> },
}

/// Reads lines of at most `max_line` bytes from `R`.
pub struct LineReader<R> {
    inner: R,
    max_line: usize,
    eof: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader { inner, max_line: max_line.max(1), eof: false }
    }

    /// The next line, or `None` at end of stream. A final line without a
    /// trailing newline is returned as a line.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        if self.eof {
            return Ok(None);
        }
        let mut buf: Vec<u8> = Vec::new();
        // Set once the line is over the limit: bytes dropped, and the id search.
        let mut discarded: u64 = 0;
        let mut scan: Option<IdScan> = None;
        loop {
            let available = match self.inner.fill_buf().await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                self.eof = true;
                if let Some(scan) = scan {
                    return Ok(Some(Line::TooLong { len: discarded, id: scan.finish() }));
                }
                if buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(Line::Data(strip_cr(buf))));
            }
            let (chunk, found_newline) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], Some(i)),
                None => (available, None),
            };
            if let Some(scan) = &mut scan {
                scan.feed(chunk);
                discarded += chunk.len() as u64;
            } else if buf.len() + chunk.len() > self.max_line {
                let mut s = IdScan::new();
                s.feed(&buf);
                s.feed(chunk);
                scan = Some(s);
                discarded = (buf.len() + chunk.len()) as u64;
                buf = Vec::new(); // release the memory of the oversized prefix
            } else {
                buf.extend_from_slice(chunk);
            }
            let consumed = found_newline.map(|i| i + 1).unwrap_or(chunk.len());
            self.inner.consume(consumed);
            if found_newline.is_some() {
                if let Some(scan) = scan {
                    return Ok(Some(Line::TooLong { len: discarded, id: scan.finish() }));
                }
                return Ok(Some(Line::Data(strip_cr(buf))));
            }
        }
    }
}

fn strip_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(tokio::io::BufReader::with_capacity(7, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_strips_crlf() {
        let lines = read_all(b"a\r\nbc\n\nlast", 100).await;
        assert_eq!(lines, vec![Line::Data(b"a".to_vec()), Line::Data(b"bc".to_vec()), Line::Data(vec![]), Line::Data(b"last".to_vec())]);
    }

    #[tokio::test]
    async fn oversized_line_is_discarded_and_next_line_served() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\nok\n");
        let lines = read_all(&input, 10).await;
        assert_eq!(lines, vec![Line::TooLong { len: 1000, id: None }, Line::Data(b"ok".to_vec())]);
        // exactly at the limit is fine
        let lines = read_all(b"0123456789\n", 10).await;
        assert_eq!(lines, vec![Line::Data(b"0123456789".to_vec())]);
        // oversized final line without newline
        let lines = read_all(&[b'y'; 50], 10).await;
        assert_eq!(lines, vec![Line::TooLong { len: 50, id: None }]);
    }

    #[tokio::test]
    async fn oversized_line_reports_its_top_level_id_wherever_it_is() {
        let params = format!(r#"{{"id":"inner","text":"{}"}}"#, "\\\"{".repeat(300));
        for (line, id) in [
            (format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{params}}}"#), Some(&b"7"[..])),
            (format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":"seven"}}"#), Some(&b"\"seven\""[..])),
            (format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{params}}}"#), None),
        ] {
            let mut input = line.clone().into_bytes();
            input.extend_from_slice(b"\r\nok\n");
            let lines = read_all(&input, 100).await;
            let want = Line::TooLong { len: line.len() as u64 + 1, id: id.map(<[u8]>::to_vec) };
            assert_eq!(lines, vec![want, Line::Data(b"ok".to_vec())], "{line}");
        }
    }
}
