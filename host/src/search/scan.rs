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
    let mut scanner = Scanner::new(input, spec);
    while let Flow::More = scanner.step(reader, ctl, out)? {}
    scanner.finish(out)
}

/// Whether the scan goes on after a step.
enum Flow {
    More,
    Done,
}

/// What the window says of a region, from its first and last stamps.
enum InWindow {
    /// Some lines may be inside: look for matches.
    Maybe,
    /// Every line is before the window's start.
    Before,
    /// Every line is past the window's end: nothing later can match.
    Past,
}

/// Whole lines of the buffer, `[start, end)`, searched in one step; lines
/// starting before `match_hi` may match, the rest only give after-context.
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    end: usize,
    match_hi: usize,
}

/// A matching line inside the window: `[start, end)` in the buffer (`end`
/// at its `\n`) and its effective stamp.
#[derive(Clone, Copy)]
struct Found {
    start: usize,
    end: usize,
    stamp: Option<i64>,
}

/// One scan's state between steps (a step searches one buffer of lines).
struct Scanner<'a> {
    spec: &'a ScanSpec<'a>,
    /// Bytes the reader may give.
    limit: u64,
    start_lines: u64,
    buf: Vec<u8>,
    /// `buf[..len]` holds data.
    len: usize,
    /// `buf[0..pos]` is already searched (kept for before-context); `pos` starts a line.
    pos: usize,
    /// Absolute offset of `buf[0]`.
    buf_abs: u64,
    /// Lines starting at or past this absolute offset do not match.
    match_end_abs: u64,
    /// Past `match_end_abs` (or the window): only after-context is still owed.
    matching_done: bool,
    counter: LineCounter,
    /// Index in `buf` up to which `counter` has counted.
    counted: usize,
    /// Effective stamp of the line just before `pos`.
    carried: Option<i64>,
    /// Matches waiting for after-context from the next buffer, in order.
    pending: VecDeque<Pending>,
    read_total: u64,
    eof: bool,
    stats: ScanStats,
}

impl<'a> Scanner<'a> {
    fn new(input: &ScanInput<'_>, spec: &'a ScanSpec<'a>) -> Self {
        let mut buf = vec![0u8; BUF_SIZE.max(input.prefix.len() * 2)];
        let len = input.prefix.len();
        buf[..len].copy_from_slice(input.prefix);
        Scanner {
            spec,
            limit: input.limit,
            start_lines: input.start_lines,
            buf,
            len,
            pos: len,
            buf_abs: input.start_abs - len as u64,
            match_end_abs: input.start_abs.saturating_add(input.match_limit),
            matching_done: false,
            counter: LineCounter::new(input.start_abs, input.start_lines, input.record_checkpoints),
            counted: len,
            carried: input.carried,
            pending: VecDeque::new(),
            read_total: 0,
            eof: false,
            stats: ScanStats::default(),
        }
    }

    /// Read a buffer of lines and search it.
    fn step<R: Read + ?Sized>(&mut self, reader: &mut R, ctl: &dyn Control, out: &mut dyn Emit) -> io::Result<Flow> {
        if let Some(stop) = ctl.check() {
            self.stats.stopped = Some(stop);
            return Ok(Flow::Done);
        }
        self.fill(reader, ctl)?;
        if self.pos == self.len && self.eof {
            return Ok(Flow::Done);
        }
        let Some(region) = self.region() else { return Ok(Flow::More) };
        self.give_after_context(region, out)?;
        if self.matching_done {
            return Ok(self.read_on_for_context(region));
        }
        match self.in_window(region) {
            InWindow::Past => {
                self.stats.past_window = true;
                return Ok(Flow::Done);
            }
            InWindow::Before => {}
            InWindow::Maybe => self.find_matches(region, out)?,
        }
        self.account(region);
        if region.match_hi < region.end || self.buf_abs + region.end as u64 >= self.match_end_abs {
            self.matching_done = true;
            if self.pending.is_empty() {
                return Ok(Flow::Done);
            }
        }
        if self.eof && region.end >= self.len {
            return Ok(Flow::Done);
        }
        self.roll_keeping_context(region.end);
        Ok(Flow::More)
    }

    /// Fill the buffer from the reader (up to `limit`); a read error after
    /// some data ends the scan there (reported by the caller).
    fn fill<R: Read + ?Sized>(&mut self, reader: &mut R, ctl: &dyn Control) -> io::Result<()> {
        while self.len < self.buf.len() && !self.eof {
            let want = ((self.limit - self.read_total) as usize).min(self.buf.len() - self.len);
            if want == 0 {
                self.eof = true;
                break;
            }
            match reader.read(&mut self.buf[self.len..self.len + want]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.len += n;
                    self.read_total += n as u64;
                    ctl.read(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if self.stats.bytes == 0 && self.len == 0 {
                        return Err(e);
                    }
                    // Report what was read; the caller notes the error.
                    tracing::warn!(file = self.spec.file, error = %e, "read error during search; reporting what was read");
                    self.eof = true;
                }
            }
        }
        Ok(())
    }

    /// The region to search: whole lines only (all of it at EOF). `None`
    /// when the buffer holds no whole line: it grew, to read on.
    fn region(&mut self) -> Option<Region> {
        let end = if self.eof {
            self.len
        } else {
            match memchr::memrchr(b'\n', &self.buf[self.pos..self.len]) {
                Some(i) => self.pos + i + 1,
                None if self.buf.len() < MAX_BUF => {
                    let new_len = (self.buf.len() * 2).min(MAX_BUF);
                    self.buf.resize(new_len, 0);
                    return None;
                }
                None => self.len, // a giant line: cut it here
            }
        };
        let start = self.pos;
        // Lines starting before match_hi may match.
        let match_hi =
            if self.matching_done { start } else { (self.match_end_abs.saturating_sub(self.buf_abs).max(start as u64) as usize).min(end) };
        Some(Region { start, end, match_hi })
    }

    /// After-context owed by earlier matches comes from this region's first
    /// lines; matches owed nothing more are emitted, in order.
    fn give_after_context(&mut self, region: Region, out: &mut dyn Emit) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let max_need = self.pending.iter().map(|x| x.need).max().unwrap_or(0);
        let mut lines: Vec<String> = Vec::new();
        let mut p = region.start;
        while lines.len() < max_need && p < region.end {
            let e = line_end(&self.buf, p, region.end);
            lines.push(line_text(&self.buf[p..e]));
            p = e + 1;
        }
        for item in self.pending.iter_mut() {
            let n = item.need.min(lines.len());
            for text in &lines[..n] {
                let ln = item.m.line_number + item.m.after.len() as u64 + 1;
                item.m.after.push(ContextLine { line_number: ln, text: text.clone() });
            }
            item.need -= n;
        }
        while self.pending.front().is_some_and(|x| x.need == 0) {
            out.emit(self.pending.pop_front().unwrap().m)?;
        }
        Ok(())
    }

    /// Matching is over and only after-context is still owed: drop the
    /// region and read on (or stop when nothing is owed or nothing is left).
    fn read_on_for_context(&mut self, region: Region) -> Flow {
        if self.pending.is_empty() || (self.eof && region.end >= self.len) {
            return Flow::Done;
        }
        self.roll(region.end, region.end);
        Flow::More
    }

    /// The region's stamps against the window (stamps may be out of order
    /// by up to [`TOLERANCE_MS`]).
    fn in_window(&self, region: Region) -> InWindow {
        let Some(w) = self.spec.window else { return InWindow::Maybe };
        if w.end_ms != i64::MAX {
            if let Some(first) = super::files::first_stamp(&self.buf[region.start..region.match_hi], self.spec.parser) {
                if first > w.end_ms.saturating_add(TOLERANCE_MS) {
                    return InWindow::Past;
                }
            }
        }
        if w.start_ms != i64::MIN {
            if let Some(last) = self.last_stamp(region) {
                if last < w.start_ms.saturating_sub(TOLERANCE_MS) {
                    return InWindow::Before;
                }
            }
        }
        InWindow::Maybe
    }

    /// The last stamp of the region's matchable lines (looked for in their
    /// last 64 KiB).
    fn last_stamp(&self, region: Region) -> Option<i64> {
        let tail_lo = region.match_hi.saturating_sub(64 * 1024).max(region.start);
        super::files::last_stamp(&self.buf[tail_lo..region.match_hi], tail_lo == region.start, self.spec.parser)
    }

    /// Every matching line of the region whose effective stamp is inside the window.
    fn find_matches(&mut self, region: Region, out: &mut dyn Emit) -> io::Result<()> {
        // Effective stamp known at a line start index (the last resolved match).
        let mut last_eff: Option<(usize, Option<i64>)> = None;
        let mut p = region.start;
        while p < region.match_hi {
            let Some((s, e)) = find_line(self.spec.matcher, &self.buf, p, region.match_hi) else { break };
            p = e + 1;
            let e = if e == region.match_hi && region.match_hi < region.end { line_end(&self.buf, s, region.end) } else { e };
            let stamp = self.effective_stamp(s, e, region.start, last_eff);
            last_eff = Some((s, stamp));
            if let Some(w) = self.spec.window {
                if !stamp.is_some_and(|ms| w.contains(ms)) {
                    continue;
                }
            }
            self.found(Found { start: s, end: e, stamp }, region, out)?;
        }
        Ok(())
    }

    /// The stamp the line `[s, e)` belongs to: its own, else that of the
    /// nearest stamped line before it in the region (a stack trace's lines
    /// take their entry's), else the stamp carried into the region.
    fn effective_stamp(&self, s: usize, e: usize, lo: usize, last: Option<(usize, Option<i64>)>) -> Option<i64> {
        let (buf, parser) = (&self.buf, self.spec.parser);
        if let Some(ms) = parser.parse(&buf[s..e]) {
            return Some(ms);
        }
        let mut q = s;
        let mut steps = 0;
        while q > lo && steps < 100_000 {
            let ls = line_start(buf, q - 1, lo);
            if let Some((idx, st)) = last {
                if ls <= idx {
                    return st;
                }
            }
            if let Some(ms) = parser.parse(&buf[ls..q - 1]) {
                return Some(ms);
            }
            q = ls;
            steps += 1;
        }
        self.carried
    }

    /// A match: numbered, given its context, emitted (or kept until the
    /// next buffer gives the after-context it is owed).
    fn found(&mut self, m: Found, region: Region, out: &mut dyn Emit) -> io::Result<()> {
        self.counter.advance(&self.buf[self.counted..m.start]);
        self.counted = m.start;
        let line_number = self.counter.lines + 1;
        self.stats.matches += 1;
        let line = &self.buf[m.start..m.end];
        if self.spec.context == 0 {
            // No context, so nothing is pending: emit from the buffer.
            debug_assert!(self.pending.is_empty());
            return out.emit_line(self.spec.file, line_number, m.stamp, line);
        }
        let (after, need) = self.after_context(m.end, region.end, line_number);
        let sm = SearchMatch {
            file: self.spec.file.to_string(),
            line_number,
            timestamp: m.stamp.map(format_ms),
            text: line_text(line),
            before: self.before_context(m.start, line_number),
            after,
        };
        if need > 0 || !self.pending.is_empty() {
            self.pending.push_back(Pending { m: sm, need });
            Ok(())
        } else {
            out.emit(sm)
        }
    }

    /// Up to `context` lines before the match starting at `s`.
    fn before_context(&self, s: usize, line_number: u64) -> Vec<ContextLine> {
        let mut before = Vec::new();
        let mut q = s;
        while before.len() < self.spec.context && q > 0 {
            let ls = line_start(&self.buf, q - 1, 0);
            before.push(ContextLine { line_number: line_number - before.len() as u64 - 1, text: line_text(&self.buf[ls..q - 1]) });
            q = ls;
        }
        before.reverse();
        before
    }

    /// Up to `context` lines after the match ending at `e` in this region,
    /// and how many more the next buffer owes it.
    fn after_context(&self, e: usize, end: usize, line_number: u64) -> (Vec<ContextLine>, usize) {
        let ctx = self.spec.context;
        let mut after = Vec::new();
        let mut q = e + 1;
        while after.len() < ctx && q < end {
            let le = line_end(&self.buf, q, end);
            after.push(ContextLine { line_number: line_number + after.len() as u64 + 1, text: line_text(&self.buf[q..le]) });
            q = le + 1;
        }
        let need = if after.len() < ctx && !self.eof { ctx - after.len() } else { 0 };
        (after, need)
    }

    /// Account for the region: its lines counted, its bytes, its last stamp
    /// carried to the next.
    fn account(&mut self, region: Region) {
        self.counter.advance(&self.buf[self.counted..region.match_hi]);
        self.stats.bytes += (region.match_hi - region.start) as u64;
        if let Some(ms) = self.last_stamp(region) {
            self.carried = Some(ms);
        }
    }

    /// Roll the buffer past the region, keeping `context` lines before its
    /// end for before-context.
    fn roll_keeping_context(&mut self, region_end: usize) {
        let mut keep = region_end;
        let mut k = 0;
        while k < self.spec.context && keep > 0 {
            keep = line_start(&self.buf, keep - 1, 0);
            k += 1;
        }
        self.roll(region_end, keep);
    }

    /// Drop `buf[..keep]`; searching goes on at `region_end`.
    fn roll(&mut self, region_end: usize, keep: usize) {
        self.buf.copy_within(keep..self.len, 0);
        self.len -= keep;
        self.buf_abs += keep as u64;
        self.pos = region_end - keep;
        self.counted = self.pos;
    }

    /// Flush matches still owed after-context (the file ended).
    fn finish(mut self, out: &mut dyn Emit) -> io::Result<ScanStats> {
        while let Some(p) = self.pending.pop_front() {
            out.emit(p.m)?;
        }
        self.stats.lines = self.counter.lines - self.start_lines;
        self.stats.checkpoints = self.counter.checkpoints;
        Ok(self.stats)
    }
}
