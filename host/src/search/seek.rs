//! Seeking in plain files: to the window's start (binary search on stamps)
//! and to line starts.

use std::fs::File;

use super::files;
use super::timestamp::StampParser;

/// Binary search over byte offsets for a point whose next stamped line is
/// earlier than `target`, so that everything before it is too (files are
/// roughly sorted; the caller's tolerance absorbs local disorder). Returns 0
/// when no such point is found.
pub(super) fn window_start_offset(file: &mut File, size: u64, target: i64, parser: &StampParser) -> u64 {
    const GRAIN: u64 = 256 * 1024;
    let mut lo = 0u64;
    let mut hi = size;
    let mut lo_line = 0u64;
    while hi.saturating_sub(lo) > GRAIN {
        let mid = lo + (hi - lo) / 2;
        match probe(file, mid, size, parser) {
            Some((line, ms)) if ms < target => {
                lo = mid;
                lo_line = line;
            }
            _ => hi = mid,
        }
    }
    lo_line
}

/// The first stamped line at or after `off` (skipping the partial line at
/// `off`): its start and stamp.
fn probe(file: &mut File, off: u64, size: u64, parser: &StampParser) -> Option<(u64, i64)> {
    let mut buf = vec![0u8; (64 * 1024).min((size - off) as usize)];
    let n = files::read_full_at(file, off, &mut buf).ok()?;
    let buf = &buf[..n];
    let mut p = if off == 0 { 0 } else { memchr::memchr(b'\n', buf)? + 1 };
    while p < buf.len() {
        let e = memchr::memchr(b'\n', &buf[p..]).map(|i| p + i)?;
        if let Some(ms) = parser.parse(&buf[p..e]) {
            return Some((off + p as u64, ms));
        }
        p = e + 1;
    }
    None
}

/// Move `off` forward to a line start (unless it already is one).
pub(super) fn resync(file: &mut File, off: u64, end: u64) -> u64 {
    let mut b = [0u8; 1];
    if files::read_full_at(file, off - 1, &mut b).ok() == Some(1) && b[0] == b'\n' {
        return off;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = off;
    while at < end {
        let Ok(n) = files::read_full_at(file, at, &mut buf) else { return end };
        if n == 0 {
            return end;
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return at + i as u64 + 1;
        }
        at += n as u64;
    }
    end
}
