//! The line scanner: one reader, one matcher, matches in file order.
//!
//! This is grep-searcher's "fast line search" (find a candidate in a whole
//! buffer of lines with `Matcher::find_candidate_line`, confirm it on its
//! line, count lines lazily) written out here because logai needs what a
//! `Sink` cannot see: the stamp of the line a match *belongs to* (stack trace
//! lines have none and take the stamp of the stamped line before them, which
//! may be far before the match), per-buffer window checks (skip buffers
//! entirely before the window, stop once past it), a cancellation check per
//! buffer, and byte-range limits. The matcher is grep-regex's
//! `RegexMatcher`, the same one ripgrep uses.
//!
//! Binary data: NUL bytes are ordinary bytes here. Nothing stops at them and
//! no match is dropped: the ground truth is `rg -a` (`--text`). Lines are
//! reported as lossy UTF-8.
//!
//! Context: each match carries its own `context` lines before and after,
//! regardless of whether those lines match too (rg prints such lines once, as
//! matches; the set of lines shown is the same).

use std::collections::VecDeque;
use std::io::{self, Read};

use grep_matcher::{LineMatchKind, Matcher};
use grep_regex::RegexMatcher;

use super::api::{ContextLine, SearchMatch};
use super::lineindex::LineCounter;
use super::timestamp::{format_ms, StampParser};
use super::window::Window;

/// Initial buffer; grows (up to [`MAX_BUF`]) for longer lines.
pub const BUF_SIZE: usize = 256 * 1024;
/// A "line" longer than this is cut into pieces of this size.
pub const MAX_BUF: usize = 64 * 1024 * 1024;
/// Reported line text is cut after this many bytes, with a marker.
pub const MAX_LINE_BYTES: usize = 4096;
/// How far stamps may be out of order.
pub const TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// What one scan needs besides the reader.
pub struct ScanSpec<'a> {
    pub matcher: &'a RegexMatcher,
    pub context: usize,
    pub parser: &'a StampParser,
    pub window: Option<Window>,
    /// The file, as reported in matches.
    pub file: &'a str,
}

/// Why a scan stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Cancelled,
    Deadline,
}

/// Receives matches in file order. Returning an error aborts the scan.
pub trait Emit {
    fn emit(&mut self, m: SearchMatch) -> io::Result<()>;

    /// A match without context lines, from borrowed parts: `line` is the raw
    /// line (without its `\n`), `stamp` its effective stamp. The default
    /// builds the owned [`SearchMatch`]; a sink that only serializes (the
    /// overflow spill) writes it straight from the borrowed bytes.
    fn emit_line(&mut self, file: &str, line_number: u64, stamp: Option<i64>, line: &[u8]) -> io::Result<()> {
        self.emit(SearchMatch {
            file: file.to_string(),
            line_number,
            timestamp: stamp.map(format_ms),
            text: line_text(line),
            before: Vec::new(),
            after: Vec::new(),
        })
    }
}

impl Emit for Vec<SearchMatch> {
    fn emit(&mut self, m: SearchMatch) -> io::Result<()> {
        self.push(m);
        Ok(())
    }
}

/// What the scanner asks of its caller between buffers.
pub trait Control {
    /// `Some` when the scan must stop now.
    fn check(&self) -> Option<Stop>;
    /// Bytes just read (for progress).
    fn read(&self, bytes: u64);
}

#[derive(Clone, Debug, Default)]
pub struct ScanStats {
    pub bytes: u64,
    pub matches: u64,
    pub stopped: Option<Stop>,
    /// Whether the scan ended because stamps passed the window's end.
    pub past_window: bool,
    /// Line checkpoints crossed (absolute offset, newlines before it,
    /// counted from `start_lines`).
    pub checkpoints: Vec<(u64, u64)>,
    /// Newlines counted in the matched range.
    pub lines: u64,
}

/// Lossy UTF-8 of a line without its terminator, cut at [`MAX_LINE_BYTES`].
pub fn line_text(line: &[u8]) -> String {
    let mut line = line;
    if line.last() == Some(&b'\n') {
        line = &line[..line.len() - 1];
    }
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    if line.len() <= MAX_LINE_BYTES {
        return String::from_utf8_lossy(line).into_owned();
    }
    let mut cut = MAX_LINE_BYTES;
    // Do not split a UTF-8 sequence.
    while cut > 0 && (line[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let mut s = String::from_utf8_lossy(&line[..cut]).into_owned();
    s.push_str(&format!(" …[line truncated: {} bytes]", line.len()));
    s
}

/// Start of the line containing `buf[i]` (or `i` itself when it follows `\n`).
#[inline]
fn line_start(buf: &[u8], i: usize, lo: usize) -> usize {
    memchr::memrchr(b'\n', &buf[lo..i]).map(|j| lo + j + 1).unwrap_or(lo)
}

/// End (index of the `\n`, or `hi`) of the line containing `buf[i]`.
#[inline]
fn line_end(buf: &[u8], i: usize, hi: usize) -> usize {
    memchr::memchr(b'\n', &buf[i..hi]).map(|j| i + j).unwrap_or(hi)
}

/// The next matching line in `buf[from..hi]` (whole lines), as `[start, end)`
/// with `end` at its `\n` (or `hi`).
#[inline]
fn find_line(m: &RegexMatcher, buf: &[u8], mut from: usize, hi: usize) -> Option<(usize, usize)> {
    while from < hi {
        let kind = match m.find_candidate_line(&buf[from..hi]) {
            Ok(Some(k)) => k,
            _ => return None,
        };
        let (i, confirmed) = match kind {
            LineMatchKind::Confirmed(i) => (from + i, true),
            LineMatchKind::Candidate(i) => (from + i, false),
        };
        if i >= hi {
            return None;
        }
        let s = line_start(buf, i, from);
        let e = line_end(buf, i, hi);
        if confirmed {
            return Some((s, e));
        }
        let with_term = if e < hi { e + 1 } else { e };
        if m.is_match(&buf[s..with_term]).unwrap_or(false) {
            return Some((s, e));
        }
        from = e + 1;
    }
    None
}

struct Pending {
    m: SearchMatch,
    need: usize,
}

/// Where a scan starts and how far it goes.
#[derive(Clone, Debug, Default)]
pub struct ScanInput<'a> {
    /// Absolute offset the reader is positioned at (a line start).
    pub start_abs: u64,
    /// Newlines before `start_abs` (absolute), or 0 for numbers relative to it.
    pub start_lines: u64,
    /// Bytes the reader may give (beyond `match_limit` only after-context is read).
    pub limit: u64,
    /// Match lines starting in `[start_abs, start_abs + match_limit)`; a line start.
    pub match_limit: u64,
    pub record_checkpoints: bool,
    /// Complete lines just before `start_abs`, for before-context.
    pub prefix: &'a [u8],
    /// Effective stamp of the line just before `start_abs`.
    pub carried: Option<i64>,
}

/// Scan `reader` as `input` says, emitting matches in order.
pub fn scan<R: Read + ?Sized>(
    reader: &mut R,
    input: &ScanInput<'_>,
    spec: &ScanSpec<'_>,
    ctl: &dyn Control,
    out: &mut dyn Emit,
) -> io::Result<ScanStats> {
    let limit = input.limit;
    let mut stats = ScanStats::default();
    let mut buf = vec![0u8; BUF_SIZE.max(input.prefix.len() * 2)];
    buf[..input.prefix.len()].copy_from_slice(input.prefix);
    let mut len = input.prefix.len();
    // buf[0..pos] is already searched (kept for before-context); pos starts a line.
    let mut pos = len;
    // Absolute offset of buf[0].
    let mut buf_abs = input.start_abs - input.prefix.len() as u64;
    let match_end_abs = input.start_abs.saturating_add(input.match_limit);
    let mut matching_done = false;
    let mut counter = LineCounter::new(input.start_abs, input.start_lines, input.record_checkpoints);
    // Index in buf up to which `counter` has counted.
    let mut counted = pos;
    // Effective stamp of the line just before `pos`.
    let mut carried: Option<i64> = input.carried;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut read_total = 0u64;
    let mut eof = false;
    let ctx = spec.context;
    let parser = spec.parser;

    loop {
        if let Some(stop) = ctl.check() {
            stats.stopped = Some(stop);
            break;
        }
        // Fill the buffer.
        while len < buf.len() && !eof {
            let want = ((limit - read_total) as usize).min(buf.len() - len);
            if want == 0 {
                eof = true;
                break;
            }
            match reader.read(&mut buf[len..len + want]) {
                Ok(0) => eof = true,
                Ok(n) => {
                    len += n;
                    read_total += n as u64;
                    ctl.read(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if stats.bytes == 0 && len == 0 {
                        return Err(e);
                    }
                    // Report what was read; the caller notes the error.
                    tracing::warn!(file = spec.file, error = %e, "read error during search; reporting what was read");
                    eof = true;
                }
            }
        }
        if pos == len && eof {
            break;
        }
        // The region to search: whole lines only (all of it at EOF).
        let region_end = if eof {
            len
        } else {
            match memchr::memrchr(b'\n', &buf[pos..len]) {
                Some(i) => pos + i + 1,
                None => {
                    if buf.len() < MAX_BUF {
                        let new_len = (buf.len() * 2).min(MAX_BUF);
                        buf.resize(new_len, 0);
                        continue;
                    }
                    len // a giant line: cut it here
                }
            }
        };
        let region_start = pos;
        // Lines starting before match_hi may match.
        let match_hi = if matching_done {
            region_start
        } else {
            (match_end_abs.saturating_sub(buf_abs).max(region_start as u64) as usize).min(region_end)
        };

        // After-context owed by earlier matches comes from this region's first lines.
        if !pending.is_empty() {
            let mut p = region_start;
            let mut taken = 0usize;
            let max_need = pending.iter().map(|x| x.need).max().unwrap_or(0);
            let mut lines: Vec<ContextLine> = Vec::new();
            while taken < max_need && p < region_end {
                let e = line_end(&buf, p, region_end);
                lines.push(ContextLine { line_number: 0, text: line_text(&buf[p..e]) });
                taken += 1;
                p = e + 1;
            }
            for item in pending.iter_mut() {
                let n = item.need.min(lines.len());
                for l in &lines[..n] {
                    let ln = item.m.line_number + item.m.after.len() as u64 + 1;
                    item.m.after.push(ContextLine { line_number: ln, text: l.text.clone() });
                }
                item.need -= n;
            }
            while pending.front().is_some_and(|x| x.need == 0) {
                out.emit(pending.pop_front().unwrap().m)?;
            }
        }
        if matching_done {
            if pending.is_empty() || (eof && region_end >= len) {
                break;
            }
            // Only after-context is still owed: roll and read on.
            let keep = region_end;
            buf.copy_within(keep..len, 0);
            len -= keep;
            buf_abs += keep as u64;
            pos = 0;
            counted = 0;
            continue;
        }

        // Window checks on this region's stamps.
        let mut skip = false;
        if let Some(w) = spec.window {
            let region = &buf[region_start..match_hi];
            if w.end_ms != i64::MAX {
                if let Some(first) = super::files::first_stamp(region, parser) {
                    if first > w.end_ms.saturating_add(TOLERANCE_MS) {
                        stats.past_window = true;
                        break;
                    }
                }
            }
            if w.start_ms != i64::MIN {
                let tail_lo = match_hi.saturating_sub(64 * 1024).max(region_start);
                if let Some(last) = super::files::last_stamp(&buf[tail_lo..match_hi], tail_lo == region_start, parser) {
                    if last < w.start_ms.saturating_sub(TOLERANCE_MS) {
                        skip = true;
                    }
                }
            }
        }

        // Matches.
        if !skip {
            // Effective stamp known at a line start index (the last resolved match).
            let mut last_eff: Option<(usize, Option<i64>)> = None;
            let mut p = region_start;
            while p < match_hi {
                let Some((s, e)) = find_line(spec.matcher, &buf, p, match_hi) else { break };
                p = e + 1;
                let e = if e == match_hi && match_hi < region_end { line_end(&buf, s, region_end) } else { e };
                let line = &buf[s..e];
                // Effective stamp.
                let own = parser.parse(line);
                let eff = match own {
                    Some(ms) => Some(ms),
                    None => {
                        let mut found: Option<Option<i64>> = None;
                        let mut q = s;
                        let mut steps = 0;
                        while q > region_start && steps < 100_000 {
                            let ls = line_start(&buf, q - 1, region_start);
                            if let Some((idx, st)) = last_eff {
                                if ls <= idx {
                                    found = Some(st);
                                    break;
                                }
                            }
                            if let Some(ms) = parser.parse(&buf[ls..q - 1]) {
                                found = Some(Some(ms));
                                break;
                            }
                            q = ls;
                            steps += 1;
                        }
                        found.unwrap_or(carried)
                    }
                };
                last_eff = Some((s, eff));
                if let Some(w) = spec.window {
                    match eff {
                        Some(ms) if w.contains(ms) => {}
                        _ => continue,
                    }
                }
                // Line number.
                counter.advance(&buf[counted..s]);
                counted = s;
                let line_number = counter.lines + 1;
                stats.matches += 1;
                if ctx == 0 {
                    // No context, so nothing is pending: emit from the buffer.
                    debug_assert!(pending.is_empty());
                    out.emit_line(spec.file, line_number, eff, line)?;
                    continue;
                }
                let mut before = Vec::new();
                if ctx > 0 {
                    let mut q = s;
                    while before.len() < ctx && q > 0 {
                        let ls = line_start(&buf, q - 1, 0);
                        before.push(ContextLine { line_number: line_number - before.len() as u64 - 1, text: line_text(&buf[ls..q - 1]) });
                        q = ls;
                    }
                    before.reverse();
                }
                let mut after = Vec::new();
                let mut need = 0;
                if ctx > 0 {
                    let mut q = e + 1;
                    while after.len() < ctx && q < region_end {
                        let le = line_end(&buf, q, region_end);
                        after.push(ContextLine { line_number: line_number + after.len() as u64 + 1, text: line_text(&buf[q..le]) });
                        q = le + 1;
                    }
                    if after.len() < ctx && !eof {
                        need = ctx - after.len();
                    }
                }
                let m = SearchMatch {
                    file: spec.file.to_string(),
                    line_number,
                    timestamp: eff.map(format_ms),
                    text: line_text(line),
                    before,
                    after,
                };
                if need > 0 || !pending.is_empty() {
                    pending.push_back(Pending { m, need });
                } else {
                    out.emit(m)?;
                }
            }
        }

        // Account for the region.
        counter.advance(&buf[counted..match_hi]);
        stats.bytes += (match_hi - region_start) as u64;
        {
            let tail_lo = match_hi.saturating_sub(64 * 1024).max(region_start);
            if let Some(ms) = super::files::last_stamp(&buf[tail_lo..match_hi], tail_lo == region_start, parser) {
                carried = Some(ms);
            }
        }
        if match_hi < region_end || buf_abs + region_end as u64 >= match_end_abs {
            matching_done = true;
            if pending.is_empty() {
                break;
            }
        }
        if eof && region_end >= len {
            break;
        }
        // Roll: keep `ctx` lines before region_end for before-context.
        let mut keep = region_end;
        let mut k = 0;
        while k < ctx && keep > 0 {
            keep = line_start(&buf, keep - 1, 0);
            k += 1;
        }
        buf.copy_within(keep..len, 0);
        len -= keep;
        buf_abs += keep as u64;
        pos = region_end - keep;
        counted = pos;
    }
    // Flush matches still owed after-context (the file ended).
    while let Some(p) = pending.pop_front() {
        out.emit(p.m)?;
    }
    stats.lines = counter.lines - input.start_lines;
    stats.checkpoints = counter.checkpoints;
    Ok(stats)
}
