//! One work item searched: the file opened (still confined), the scan set
//! up (a `.gz` decoded from its start; a plain file from a line start with
//! its line count and before-context) and its matches kept or spilled.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::Ordering;

use chrono_tz::Tz;
use grep_regex::RegexMatcher;

use super::files::{self, FileId};
use super::fold::{Fold, FoldSpec};
use super::progress::Progress;
use super::scan::{self, Control, Emit, ScanSpec, ScanStats, Stop};
use super::session::{self, FinishedJsonl, JsonlWriter};
use super::timestamp::{self, StampParser};
use super::{SearchCore, SearchMatch, SearchPlan};

/// Line numbers of chunks after the first count from here (so context lines
/// before a chunk's first line stay positive); the base added at merge is
/// `lines before the chunk - REL_ORIGIN` (wrapping).
pub(super) const REL_ORIGIN: u64 = 1 << 32;

/// One unit of work: a whole file, or a byte chunk of one.
pub(super) struct WorkItem {
    pub(super) file: usize,
    /// First byte (a line start).
    pub(super) start: u64,
    /// Lines starting before this may match.
    pub(super) match_end: u64,
    /// Bytes past this are not read (the planned size).
    pub(super) end: u64,
    /// Index of the chunk within its file.
    pub(super) chunk: u32,
    /// The file's last chunk.
    pub(super) last: bool,
}

#[derive(Default)]
pub(super) struct ItemResult {
    /// Matches kept in memory (line numbers relative to `base`).
    pub(super) mem: Vec<SearchMatch>,
    /// Every match of the item, when there were more than `max_results`.
    pub(super) spill: Option<FinishedJsonl>,
    pub(super) count: u64,
    pub(super) bytes: u64,
    /// Newlines counted in the item's range.
    pub(super) lines: u64,
    /// For chunk 0: newlines before its start (its numbers are absolute).
    pub(super) abs_start_lines: Option<u64>,
    /// Added to line numbers at merge.
    pub(super) base: u64,
    pub(super) checkpoints: Vec<(u64, u64)>,
    /// The item's aggregate, when the run folds lines instead of keeping matches.
    pub(super) fold: Option<Box<dyn Fold>>,
    pub(super) stopped: Option<Stop>,
    pub(super) stopped_by_error: bool,
    pub(super) skipped: bool,
    /// The scan covered the item's whole range (not stopped early by the
    /// window's end, a shrunk file, or anything else).
    pub(super) complete: bool,
    /// Nothing of the item's range is left to read for this plan: read to
    /// its end, or up to lines past the window's end.
    pub(super) finished: bool,
    pub(super) notes: Vec<String>,
}

impl ItemResult {
    pub(super) fn drop_matches(&mut self) {
        self.mem.clear();
        self.fold = None;
        if let Some(s) = self.spill.take() {
            let _ = std::fs::remove_file(&s.path);
        }
        self.count = 0;
    }
}

impl SearchCore {
    /// Search one work item: the file opened again (still confined, maybe
    /// replaced since planning), scanned, its matches kept or spilled.
    pub(super) fn search_item(&self, job: &ItemJob<'_>, item: &WorkItem) -> ItemResult {
        let f = &job.plan.files[item.file];
        let mut result = ItemResult::default();
        let label = f.path.to_string_lossy().to_string();
        let Some((file, now_id)) = self.reopen(job, item, &label, &mut result) else {
            result.skipped = true;
            return result;
        };
        let parser = StampParser::new(job.plan.format, job.tz, f.id.mtime());
        let spec = ScanSpec {
            matcher: job.matcher,
            context: job.plan.request.context as usize,
            parser: &parser,
            window: job.plan.window,
            file: &label,
        };
        let mut emit = FileEmit { core: self, mem: Vec::new(), cap: job.max_results, spill: None, count: 0 };
        let mut fold = job.fold.map(|f| f.start(item.file));
        let sink: &mut dyn Emit = match &mut fold {
            Some(f) => f.as_mut(),
            None => &mut emit,
        };
        let outcome = if f.gz {
            scan_gz(GzScan { file, start: f.start_offset, context: job.plan.request.context }, job.shared, &spec, sink, &mut result)
        } else {
            let plain = PlainScan { job, item, file, id: now_id, spec: &spec };
            self.scan_plain(plain, sink, &mut result)
        };
        let matched = outcome.as_ref().map_or(0, |st| st.matches);
        match outcome {
            Ok(st) => {
                result.bytes = st.bytes;
                result.stopped = st.stopped;
                result.lines = st.lines;
                result.checkpoints = st.checkpoints;
            }
            Err(e) => {
                result.notes.push(format!("{label}: read error: {e}"));
                result.stopped_by_error = true;
            }
        }
        emit.finish_into(&mut result, &label);
        if let Some(fold) = fold {
            result.count = matched;
            result.fold = Some(fold);
        }
        result
    }

    /// The item's file opened by its canonical path, which must still be
    /// inside the service's roots, and its identity now; `None` (noted in
    /// `result`) when it cannot be searched.
    fn reopen(&self, job: &ItemJob<'_>, item: &WorkItem, label: &str, result: &mut ItemResult) -> Option<(File, FileId)> {
        let f = &job.plan.files[item.file];
        let service = self.service(&job.plan.service).ok()?;
        if !service.confines(&f.path) {
            result.notes.push(format!("{label}: outside the service's roots; not searched"));
            return None;
        }
        let file = match File::open(&f.path) {
            Ok(file) => file,
            Err(e) => {
                result.notes.push(format!("{label}: could not be opened ({e}); rotated or deleted since planning"));
                return None;
            }
        };
        let now_id = FileId::of(&file.metadata().ok()?);
        if now_id.dev != f.id.dev || now_id.ino != f.id.ino {
            if f.same_file {
                result.notes.push(format!("{label}: replaced since planning (rotated); its lines come with the next call"));
                return None;
            }
            result.notes.push(format!("{label}: replaced since planning (rotated); searched the current file"));
        }
        Some((file, now_id))
    }

    /// A plain file's item: from its start (a line start), with the lines
    /// before it counted and its before-context and carried stamp read, to
    /// its end; noting a file that shrank under the scan.
    fn scan_plain(&self, p: PlainScan<'_>, emit: &mut dyn Emit, result: &mut ItemResult) -> io::Result<ScanStats> {
        let PlainScan { job, item, mut file, id, spec } = p;
        let (start, end) = (item.start, item.end);
        let lines_before = self.lines_before(job, item, &mut file, id)?;
        // Context lines and the carried stamp from just before `start`.
        let (prefix, carried) =
            if start > 0 { before_start(&mut file, start, job.plan.request.context, spec.parser)? } else { (Vec::new(), None) };
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(start))?;
        if item.chunk == 0 {
            result.abs_start_lines = Some(lines_before);
        }
        let ctl = FileCtl { shared: job.shared, report_reads: true };
        let want = item.match_end.min(end) - start;
        let input = scan::ScanInput {
            start_abs: start,
            start_lines: lines_before,
            limit: end - start,
            match_limit: want,
            record_checkpoints: true,
            prefix: &prefix,
            carried,
        };
        let mut reader = &file;
        let st = scan::scan(&mut reader, &input, spec, &ctl, emit)?;
        let read_to_end = st.stopped.is_none() && !st.past_window;
        result.complete = read_to_end && st.bytes >= want;
        result.finished = st.stopped.is_none() && (st.past_window || st.bytes >= want);
        if read_to_end && st.bytes < want {
            result
                .notes
                .push(format!("{}: shrank during the search (truncated or rotated); read {} of {} bytes", spec.file, st.bytes, want));
        }
        job.shared.add_bytes(want.saturating_sub(st.bytes));
        Ok(st)
    }

    /// Newlines before the item's start: relative for a later chunk (fixed
    /// up at merge), known for a resumed start, else counted (with the
    /// line checkpoints).
    fn lines_before(&self, job: &ItemJob<'_>, item: &WorkItem, file: &mut File, id: FileId) -> io::Result<u64> {
        let f = &job.plan.files[item.file];
        let start = item.start;
        Ok(if item.chunk > 0 {
            REL_ORIGIN
        } else if start == 0 {
            0
        } else if let (true, Some(known)) = (start == f.start_offset, f.start_lines) {
            known
        } else {
            self.lines.lines_before(file, id.dev, id.ino, id.size, start)?
        })
    }
}

/// What every item of one search shares: the plan, its timezone, this
/// worker's matcher, the inline cap and the progress state.
pub(super) struct ItemJob<'a> {
    pub(super) plan: &'a SearchPlan,
    pub(super) tz: Tz,
    pub(super) matcher: &'a RegexMatcher,
    pub(super) max_results: usize,
    pub(super) shared: &'a Progress<'a>,
    /// Fold lines into aggregates instead of keeping matches.
    pub(super) fold: Option<&'a dyn FoldSpec>,
}

/// A plain file's item, opened, ready to scan.
struct PlainScan<'a> {
    job: &'a ItemJob<'a>,
    item: &'a WorkItem,
    file: File,
    /// The file's identity now (for its line checkpoints).
    id: FileId,
    spec: &'a ScanSpec<'a>,
}

/// A `.gz` file to decode, searched from `start` (decompressed bytes, a
/// line start: what a follow cursor already read of it is skipped).
struct GzScan {
    file: File,
    start: u64,
    context: u32,
}

/// A `.gz` file, decoded from its start, searched from `g.start` (progress
/// counts compressed bytes).
fn scan_gz(g: GzScan, shared: &Progress<'_>, spec: &ScanSpec<'_>, emit: &mut dyn Emit, result: &mut ItemResult) -> io::Result<ScanStats> {
    let counting = CountingReader { inner: io::BufReader::with_capacity(256 * 1024, g.file), shared };
    let mut dec = flate2::read::MultiGzDecoder::new(counting);
    let ctl = FileCtl { shared, report_reads: false };
    let (lines, back) = if g.start > 0 { skip_decoded(&mut dec, g.start)? } else { (0, Vec::new()) };
    let lo = g.start - back.len() as u64;
    let (prefix, carried) = if g.start > 0 { before(&back, lo == 0, g.context, spec.parser) } else { (Vec::new(), None) };
    result.abs_start_lines = Some(lines);
    let input = scan::ScanInput {
        start_abs: g.start,
        start_lines: lines,
        limit: u64::MAX,
        match_limit: u64::MAX,
        prefix: &prefix,
        carried,
        ..Default::default()
    };
    let st = scan::scan(&mut dec, &input, spec, &ctl, emit)?;
    result.finished = st.stopped.is_none();
    Ok(st)
}

/// Read and drop the first `n` decoded bytes: the newlines among them and
/// their last 64 KiB (for before-context and the carried stamp).
fn skip_decoded(dec: &mut impl Read, n: u64) -> io::Result<(u64, Vec<u8>)> {
    const KEEP: usize = 64 * 1024;
    let mut buf = vec![0u8; KEEP];
    let (mut left, mut lines, mut back) = (n, 0u64, Vec::new());
    while left > 0 {
        let want = (left as usize).min(KEEP);
        let got = dec.read(&mut buf[..want])?;
        if got == 0 {
            break;
        }
        lines += super::lineindex::count_newlines(&buf[..got]);
        back.extend_from_slice(&buf[..got]);
        if back.len() > KEEP {
            back.drain(..back.len() - KEEP);
        }
        left -= got as u64;
    }
    Ok((lines, back))
}

/// The complete lines just before `start` that before-context may need
/// (from its last 64 KiB), and the effective stamp carried into `start`.
fn before_start(file: &mut File, start: u64, context: u32, parser: &StampParser) -> io::Result<(Vec<u8>, Option<i64>)> {
    let lo = start.saturating_sub(64 * 1024);
    let mut back = vec![0u8; (start - lo) as usize];
    let n = files::read_full_at(file, lo, &mut back)?;
    back.truncate(n);
    Ok(before(&back, lo == 0, context, parser))
}

/// Of the bytes just before a start (`at_start`: from the file's start),
/// the complete lines before-context may need and the carried stamp.
fn before(back: &[u8], at_start: bool, context: u32, parser: &StampParser) -> (Vec<u8>, Option<i64>) {
    let carried = files::last_stamp(back, at_start, parser);
    let mut keep = back.len();
    let mut k = 0;
    while k < context && keep > 0 {
        keep = memchr::memrchr(b'\n', &back[..keep - 1]).map(|i| i + 1).unwrap_or(0);
        if keep == 0 && !at_start {
            keep = back.len();
            break;
        }
        k += 1;
    }
    (back[keep..].to_vec(), carried)
}

struct FileCtl<'a, 'b> {
    shared: &'a Progress<'b>,
    report_reads: bool,
}

impl Control for FileCtl<'_, '_> {
    fn check(&self) -> Option<Stop> {
        self.shared.check()
    }
    fn read(&self, bytes: u64) {
        if self.report_reads {
            self.shared.add_bytes(bytes);
        }
    }
}

/// Counts compressed bytes for progress.
struct CountingReader<'a, 'b, R> {
    inner: R,
    shared: &'a Progress<'b>,
}

impl<R: Read> Read for CountingReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.shared.add_bytes(n as u64);
        Ok(n)
    }
}

/// Keeps the first `cap` matches of a file in memory; past that, every match
/// of the file (the first `cap` too) goes to a spill file in the session dir.
struct FileEmit<'a> {
    core: &'a SearchCore,
    mem: Vec<SearchMatch>,
    cap: usize,
    spill: Option<JsonlWriter>,
    count: u64,
}

impl FileEmit<'_> {
    /// Hand the matches to the item's result (the spill file finished).
    fn finish_into(self, result: &mut ItemResult, label: &str) {
        result.count = self.count;
        result.mem = self.mem;
        if let Some(w) = self.spill {
            match w.finish() {
                Ok(fin) => result.spill = Some(fin),
                Err(e) => result.notes.push(format!("{label}: cannot write matches beyond max_results: {e}")),
            }
        }
    }
}

impl Emit for FileEmit<'_> {
    fn emit(&mut self, m: SearchMatch) -> io::Result<()> {
        self.count += 1;
        if let Some(w) = &mut self.spill {
            return w.write(&m).map_err(|e| io::Error::other(format!("overflow: {e}")));
        }
        if self.mem.len() < self.cap {
            self.mem.push(m);
            return Ok(());
        }
        let seq = self.core.spill_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.core.session.path().join(format!("spill-{}-{seq}.jsonl", session::new_reference()));
        let mut w = JsonlWriter::create(path).map_err(|e| io::Error::other(format!("overflow: {e}")))?;
        for x in &self.mem {
            w.write(x).map_err(|e| io::Error::other(format!("overflow: {e}")))?;
        }
        w.write(&m).map_err(|e| io::Error::other(format!("overflow: {e}")))?;
        self.spill = Some(w);
        Ok(())
    }

    fn emit_line(&mut self, file: &str, line_number: u64, stamp: Option<i64>, line: &[u8]) -> io::Result<()> {
        // Past max_results every match only goes to the spill file: write
        // its JSON line straight from the borrowed bytes (no owned match).
        if let Some(w) = &mut self.spill {
            self.count += 1;
            return w.write_line(file, line_number, stamp, line).map_err(|e| io::Error::other(format!("overflow: {e}")));
        }
        self.emit(SearchMatch {
            file: file.to_string(),
            line_number,
            timestamp: stamp.map(timestamp::format_ms),
            text: scan::line_text(line),
            before: Vec::new(),
            after: Vec::new(),
        })
    }
}
