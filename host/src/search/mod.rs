//! The native log search core. Knows nothing of MCP, Redis or wasmtime.
//!
//! ```text
//! SearchCore::new(config, session)      once per process
//!   .plan(&request, now)  -> SearchPlan  validate, resolve the window, list the
//!                                        service's files (confined), prune them
//!                                        by time range
//!   .execute(&plan, &ctl) -> SearchResponse
//!                                        files scanned in parallel (results in
//!                                        file order), binary search into each
//!                                        plain file for the window start, the
//!                                        first max_results inline, every match
//!                                        to an overflow file when there are more
//!   .read_overflow(reference, offset, limit)
//!   .list_services()
//! ```
//!
//! Blocking: run `plan`/`execute` on a blocking thread (`spawn_blocking`).
//! See `docs/search.md` for the semantics (timestamps, windows, binary data,
//! context, overflow, confinement).

pub mod api;
pub mod cli;
pub mod cover;
pub mod files;
pub mod lineindex;
pub mod scan;
pub mod session;
pub mod tail;
pub mod timestamp;
pub mod window;

#[cfg(test)]
mod tests;

pub use api::*;
pub use cli::{run_cli, SearchArgs};
pub use session::SessionDir;
pub use timestamp::LogFormat;
pub use window::Window;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
pub use tokio_util::sync::CancellationToken;

use crate::config::Config;
use files::{FileId, RangeCache, Service, TimeRange};
use lineindex::LineIndex;
use scan::{Control, Emit, ScanSpec, Stop, TOLERANCE_MS};
use session::{FinishedJsonl, JsonlWriter, OverflowStore};
use timestamp::StampParser;

/// Progress callback: `(bytes_done, bytes_total, files_done, files_total)`.
pub type ProgressFn = Box<dyn Fn(u64, u64, u32, u32) + Send + Sync>;

/// How a running search is steered: cancellation, a deadline, progress.
pub struct SearchControl {
    pub cancel: CancellationToken,
    pub deadline: Instant,
    /// Called at most every ~100 ms while the search runs.
    pub progress: Option<ProgressFn>,
}

impl SearchControl {
    pub fn new(cancel: CancellationToken, deadline: Instant) -> Self {
        SearchControl { cancel, deadline, progress: None }
    }
    /// Not cancellable, with a timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::new(CancellationToken::new(), Instant::now() + timeout)
    }
    pub fn with_progress(mut self, f: impl Fn(u64, u64, u32, u32) + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
}

/// What [`SearchCore::execute_tracked`] returns.
pub struct Executed {
    pub response: SearchResponse,
    /// Per plan file: newlines in `[0, end_offset)` when the whole file up
    /// to `end_offset` was accounted for (plain files only).
    pub lines_at_end: Vec<Option<u64>>,
}

/// One file of a plan, with its identity and state when planned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Canonical absolute path (inside the service's roots).
    pub path: PathBuf,
    pub id: FileId,
    pub gz: bool,
    pub range: TimeRange,
    /// First byte to search (a line start). 0 normally; a caller caching per
    /// segment may set it to the size already searched to scan only new bytes
    /// of a growing file (line numbers stay absolute via line checkpoints).
    /// Ignored for `.gz` files.
    pub start_offset: u64,
    /// Newlines in `[0, start_offset)`, when the caller knows them (a
    /// resumed search does): saves counting the prefix for line numbers.
    #[serde(default)]
    pub start_lines: Option<u64>,
    /// Bytes past this are not searched (the size when planned, so lines
    /// appended later are left to a later plan).
    pub end_offset: u64,
}

/// A validated search, its absolute window and the files it will read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchPlan {
    pub request: SearchRequest,
    pub service: String,
    pub format: LogFormat,
    pub timezone: String,
    pub window: Option<Window>,
    /// Files to search, oldest first.
    pub files: Vec<PlannedFile>,
    /// Files of the service left out by the time window.
    pub files_pruned: u32,
    #[serde(skip)]
    matcher: Option<Arc<RegexMatcher>>,
}

impl Serialize for LogFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LogFormat::parse(&s, "format").map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl SearchPlan {
    /// The window as the cache sees it. A bound outside every file's time
    /// range selects nothing different wherever it lies: it is left open,
    /// so a relative window asked again over logs that stopped growing
    /// finds the answer.
    pub fn key_window(&self) -> Option<Window> {
        self.window.map(|w| {
            let ranges = || self.files.iter().map(|f| f.range);
            Window {
                start_ms: if ranges().all(|r| r.first_ms.is_some_and(|x| x >= w.start_ms)) { i64::MIN } else { w.start_ms },
                end_ms: if ranges().all(|r| r.last_ms.is_some_and(|x| x < w.end_ms)) { i64::MAX } else { w.end_ms },
            }
        })
    }

    /// Total bytes the plan covers (compressed size for `.gz`).
    pub fn bytes_total(&self) -> u64 {
        self.files.iter().map(|f| f.end_offset.saturating_sub(f.start_offset)).sum()
    }
}

/// The search core: services, session directory, caches. `Send + Sync`.
pub struct SearchCore {
    services: Vec<Service>,
    limits: crate::config::LimitsConfig,
    session: SessionDir,
    overflows: OverflowStore,
    ranges: RangeCache,
    lines: LineIndex,
    workers: usize,
    chunk_bytes: u64,
    spill_seq: AtomicU64,
}

impl SearchCore {
    /// Resolve every service of the manifest (globs against its directory).
    /// Line checkpoints persist in `<session_root>/.lineindex-<uid>/`.
    pub fn new(config: &Config, session: SessionDir) -> Result<Self, SearchError> {
        let mut services = Vec::new();
        for s in &config.service {
            services.push(Service::from_config(s, &config.base_dir)?);
        }
        let uid = unsafe { libc::getuid() };
        let index_dir = config.resolve(&config.server.session_root).join(format!(".lineindex-{uid}"));
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8);
        Ok(SearchCore {
            services,
            limits: config.limits.clone(),
            session,
            overflows: OverflowStore::default(),
            ranges: RangeCache::default(),
            lines: LineIndex::new(Some(index_dir)),
            workers,
            chunk_bytes: CHUNK_BYTES,
            spill_seq: AtomicU64::new(0),
        })
    }

    /// Threads one search uses (default: available parallelism, at most 8).
    pub fn set_workers(&mut self, n: usize) {
        self.workers = n.max(1);
    }

    /// Plain files (or window ranges) larger than this are split into
    /// chunks searched in parallel (default 64 MiB).
    pub fn set_chunk_bytes(&mut self, n: u64) {
        self.chunk_bytes = n.max(4096);
    }

    pub fn session(&self) -> &SessionDir {
        &self.session
    }

    /// End the session: remove the session directory. Idempotent.
    pub fn close(&self) {
        self.session.close();
    }

    fn service(&self, name: &str) -> Result<&Service, SearchError> {
        self.services.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
            SearchError::invalid(
                "service",
                format!(
                    "unknown service '{name}'; configured services: {}",
                    if known.is_empty() { "(none)".into() } else { known.join(", ") }
                ),
            )
        })
    }

    fn build_matcher(&self, req: &SearchRequest) -> Result<RegexMatcher, SearchError> {
        let mut b = RegexMatcherBuilder::new();
        b.case_insensitive(req.case_insensitive)
            .fixed_strings(req.fixed_strings)
            .line_terminator(Some(b'\n'))
            // `^` and `$` anchor at line boundaries, as in rg.
            .multi_line(true)
            .size_limit(self.limits.regex_size_limit_bytes)
            .dfa_size_limit(self.limits.regex_size_limit_bytes);
        b.build(&req.pattern).map_err(|e| SearchError::invalid("pattern", format!("invalid pattern: {e}")))
    }

    /// Validate `req`, resolve its window against `now`, list and prune files.
    pub fn plan(&self, req: &SearchRequest, now: DateTime<Utc>) -> Result<SearchPlan, SearchError> {
        let service = self.service(&req.service)?;
        let format = match &req.log_format {
            Some(f) => LogFormat::parse(f, "log_format")?,
            None => service.format,
        };
        if req.context > self.limits.max_context_lines {
            return Err(SearchError::invalid(
                "context",
                format!("context {} is above the limit of {} lines", req.context, self.limits.max_context_lines),
            ));
        }
        if req.max_results > self.limits.max_results_cap {
            return Err(SearchError::invalid(
                "max_results",
                format!("max_results {} is above the limit of {}", req.max_results, self.limits.max_results_cap),
            ));
        }
        let window = window::resolve(req, service.tz, now)?;
        let matcher = self.build_matcher(req)?;
        let file_filter = match req.file_pattern.as_deref() {
            Some(p) => Some(files::file_pattern_matcher(p)?),
            None => None,
        };
        let mut planned = Vec::new();
        let mut pruned = 0u32;
        let (mut found, escapes) = service.discover_with_escapes();
        if let Some(fp) = &file_filter {
            found.retain(|path| fp.selects(path, service.roots()));
            // Only what resolves outside the roots: say so, naming it,
            // rather than answer as if no such file existed.
            if found.is_empty() {
                fp.refuse_escapes(&escapes)?;
            }
        }
        for path in found {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let id = FileId::of(&meta);
            let range = self.ranges.get(&path, id, format, service.tz);
            if let Some(w) = window {
                let before = range.last_ms.is_some_and(|l| l.saturating_add(TOLERANCE_MS) < w.start_ms);
                let after = range.first_ms.is_some_and(|f| f.saturating_sub(TOLERANCE_MS) >= w.end_ms);
                if before || after {
                    pruned += 1;
                    continue;
                }
            }
            planned.push(PlannedFile { gz: files::is_gz(&path), path, id, range, start_offset: 0, start_lines: None, end_offset: id.size });
        }
        planned.sort_by(|a, b| {
            let ka = (a.range.first_ms.unwrap_or(a.id.mtime_ms()), std::cmp::Reverse(rotation_index(&a.path)));
            let kb = (b.range.first_ms.unwrap_or(b.id.mtime_ms()), std::cmp::Reverse(rotation_index(&b.path)));
            ka.cmp(&kb).then_with(|| a.path.cmp(&b.path))
        });
        Ok(SearchPlan {
            request: req.clone(),
            service: service.name.clone(),
            format,
            timezone: service.tz.name().to_string(),
            window,
            files: planned,
            files_pruned: pruned,
            matcher: Some(Arc::new(matcher)),
        })
    }

    /// Run a plan. Stops early (marked partial) on cancellation or deadline.
    pub fn execute(&self, plan: &SearchPlan, ctl: &SearchControl) -> Result<SearchResponse, SearchError> {
        self.execute_tracked(plan, ctl).map(|e| e.response)
    }

    /// [`SearchCore::execute`], also reporting where each file's scan ended
    /// (what a later search of the grown file resumes from; see [`tail`]).
    pub fn execute_tracked(&self, plan: &SearchPlan, ctl: &SearchControl) -> Result<Executed, SearchError> {
        let started = Instant::now();
        let matcher = match &plan.matcher {
            Some(m) => m.clone(),
            None => Arc::new(self.build_matcher(&plan.request)?),
        };
        let service = self.service(&plan.service)?;
        let tz: Tz = plan.timezone.parse().unwrap_or(Tz::UTC);
        let max_results = plan.request.max_results as usize;
        let shared = Shared {
            ctl,
            bytes_done: AtomicU64::new(0),
            bytes_total: plan.bytes_total(),
            files_done: AtomicU32::new(0),
            files_total: plan.files.len() as u32,
            last_progress: Mutex::new(Instant::now()),
        };
        let items = self.work_items(plan, service, tz, &shared);
        let n = items.len();
        let results: Vec<Mutex<Option<ItemResult>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = self.workers.min(n).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    // Each worker its own matcher: a shared regex hands its
                    // search cache to one owner thread and makes the others
                    // take a lock per search.
                    let matcher: RegexMatcher = (*matcher).clone();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let item = &items[i];
                        let r = if shared.check().is_some() {
                            ItemResult { skipped: true, ..ItemResult::default() }
                        } else {
                            self.search_item(plan, tz, item, &matcher, max_results, &shared)
                        };
                        if item.last {
                            shared.files_done.fetch_add(1, Ordering::Relaxed);
                        }
                        *results[i].lock() = Some(r);
                    }
                });
            }
        });
        let results: Vec<ItemResult> = results.into_iter().map(|m| m.into_inner().unwrap_or_default()).collect();
        self.merge(plan, &items, results, max_results, started)
    }

    /// Split the plan into work items: one per file, or several byte chunks
    /// for large plain files (searched in parallel, line numbers fixed up
    /// at merge). Plain files start at the window's binary-searched offset.
    fn work_items(&self, plan: &SearchPlan, service: &Service, tz: Tz, shared: &Shared<'_>) -> Vec<WorkItem> {
        let mut items = Vec::new();
        for (fi, f) in plan.files.iter().enumerate() {
            let whole = WorkItem { file: fi, start: 0, match_end: u64::MAX, end: u64::MAX, chunk: 0, last: true, pre_note: None };
            if f.gz || !service.confines(&f.path) {
                items.push(whole);
                continue;
            }
            let Ok(mut file) = File::open(&f.path) else {
                items.push(whole);
                continue;
            };
            let end = f.end_offset;
            let mut start = f.start_offset.min(end);
            if let Some(w) = plan.window {
                if w.start_ms != i64::MIN {
                    let parser = StampParser::new(plan.format, tz, f.id.mtime());
                    start = start.max(window_start_offset(&mut file, end, w.start_ms - TOLERANCE_MS, &parser));
                }
            }
            if start > 0 {
                start = resync(&mut file, start, end);
            }
            shared.add_bytes(start - f.start_offset.min(start));
            let len = end - start;
            let n = ((len / self.chunk_bytes) as usize).clamp(1, self.workers * 8);
            let n = if self.workers > 1 { n } else { 1 };
            let mut bounds = vec![start];
            for k in 1..n {
                let b = resync(&mut file, start + len * k as u64 / n as u64, end);
                if b > *bounds.last().unwrap() && b < end {
                    bounds.push(b);
                }
            }
            bounds.push(end);
            let chunks = bounds.len() - 1;
            for k in 0..chunks {
                items.push(WorkItem {
                    file: fi,
                    start: bounds[k],
                    match_end: bounds[k + 1],
                    end,
                    chunk: k as u32,
                    last: k + 1 == chunks,
                    pre_note: None,
                });
            }
        }
        items
    }

    fn merge(
        &self,
        plan: &SearchPlan,
        items: &[WorkItem],
        mut results: Vec<ItemResult>,
        max_results: usize,
        started: Instant,
    ) -> Result<Executed, SearchError> {
        // Newlines in [0, end_offset) per plain file, when every part of it
        // was scanned to its end (a later search of the grown file starts
        // its line numbers there).
        let mut lines_at_end: Vec<Option<u64>> = vec![None; plan.files.len()];
        // Line bases: chunk k of a file continues chunk k-1's count. A chunk
        // after one that stopped early has unknown numbers; drop it.
        let mut cur: Option<u64> = None;
        let mut broken = false;
        let mut whole = true;
        for (item, r) in items.iter().zip(results.iter_mut()) {
            if item.chunk == 0 {
                cur = r.abs_start_lines;
                broken = false;
                r.base = 0;
            } else if broken || cur.is_none() || r.skipped {
                if r.count > 0 {
                    r.notes.push(format!(
                        "{}: {} matches after an interrupted part of the file not reported",
                        plan.files[item.file].path.display(),
                        r.count
                    ));
                }
                r.drop_matches();
                broken = true;
                continue;
            } else {
                r.base = cur.unwrap().wrapping_sub(REL_ORIGIN);
            }
            if r.stopped.is_some() || r.skipped || r.stopped_by_error {
                broken = true;
            }
            if item.chunk == 0 {
                whole = true;
            }
            whole &= r.complete && !broken;
            cur = cur.map(|c| c + r.lines);
            if item.last && whole && !plan.files[item.file].gz {
                lines_at_end[item.file] = cur;
            }
            // Record line checkpoints (absolute).
            if !r.checkpoints.is_empty() && !broken {
                let f = &plan.files[item.file];
                if let Ok(mut file) = File::open(&f.path) {
                    let cps: Vec<(u64, u64)> = r.checkpoints.iter().map(|&(o, l)| (o, l.wrapping_add(r.base))).collect();
                    self.lines.record(&mut file, f.id.dev, f.id.ino, f.id.size, &cps);
                }
            }
        }
        let total: u64 = results.iter().map(|r| r.count).sum();
        let mut searched = vec![false; plan.files.len()];
        let mut matched = vec![false; plan.files.len()];
        for (item, r) in items.iter().zip(&results) {
            searched[item.file] |= !r.skipped;
            matched[item.file] |= r.count > 0;
        }
        let mut resp = SearchResponse {
            total_matches: total,
            files_searched: searched.iter().filter(|x| **x).count() as u32,
            files_matched: matched.iter().filter(|x| **x).count() as u32,
            bytes_scanned: results.iter().map(|r| r.bytes).sum(),
            window_start: plan.window.and_then(|w| w.start_text()),
            window_end: plan.window.and_then(|w| w.end_text()),
            ..SearchResponse::default()
        };
        let mut reasons: Vec<String> = Vec::new();
        if let Some(stop) = results.iter().find_map(|r| r.stopped) {
            reasons.push(match stop {
                Stop::Cancelled => "cancelled".to_string(),
                Stop::Deadline => "deadline: the search timed out; results cover what was searched".to_string(),
            });
        }
        let unsearched = searched.iter().filter(|x| !**x).count();
        if unsearched > 0 && !reasons.is_empty() {
            reasons.push(format!("{unsearched} of {} files not searched", plan.files.len()));
        }
        for r in &results {
            for n in &r.notes {
                if !reasons.contains(n) {
                    reasons.push(n.clone());
                }
            }
        }
        if !reasons.is_empty() {
            resp.partial = true;
            resp.partial_reason = Some(reasons.join("; "));
        }
        // Inline: the first max_results in order, with absolute line numbers.
        'outer: for r in &results {
            for m in &r.mem {
                if resp.matches.len() >= max_results {
                    break 'outer;
                }
                let mut m = m.clone();
                shift_lines(&mut m, r.base);
                resp.matches.push(m);
            }
        }
        if total > max_results as u64 {
            resp.truncated = true;
            // Every match, in order: each item's spill file (or its
            // in-memory matches) becomes one part; nothing is copied.
            let reference = session::new_reference();
            let io_err = |e: io::Error| SearchError::internal(format!("cannot write the overflow file: {e}"));
            let mut overflow = session::Overflow::default();
            for (k, r) in results.into_iter().enumerate() {
                if r.count == 0 {
                    continue;
                }
                let path = self.session.path().join(format!("{reference}-{k}.jsonl"));
                let file = match r.spill {
                    Some(spill) => {
                        std::fs::rename(&spill.path, &path).map_err(io_err)?;
                        FinishedJsonl { path, ..spill }
                    }
                    None => {
                        let mut w = JsonlWriter::create(path).map_err(io_err)?;
                        for m in &r.mem {
                            w.write(m).map_err(io_err)?;
                        }
                        w.finish().map_err(io_err)?
                    }
                };
                let count = file.count;
                overflow.parts.push(session::OverflowPart { first: overflow.total, base: r.base, file });
                overflow.total += count;
            }
            resp.overflow = Some(OverflowRef { reference: reference.clone(), total: overflow.total });
            self.overflows.insert(reference, overflow);
        } else {
            for r in results {
                if let Some(s) = r.spill {
                    let _ = std::fs::remove_file(&s.path);
                }
            }
        }
        resp.duration_ms = started.elapsed().as_millis() as u64;
        Ok(Executed { response: resp, lines_at_end })
    }

    fn search_item(
        &self,
        plan: &SearchPlan,
        tz: Tz,
        item: &WorkItem,
        matcher: &RegexMatcher,
        max_results: usize,
        shared: &Shared<'_>,
    ) -> ItemResult {
        let f = &plan.files[item.file];
        let service = match self.service(&plan.service) {
            Ok(s) => s,
            Err(_) => return ItemResult { skipped: true, ..ItemResult::default() },
        };
        let mut result = ItemResult::default();
        let label = f.path.to_string_lossy().to_string();
        // Open by canonical path; it must still be inside the roots.
        if !service.confines(&f.path) {
            result.notes.push(format!("{label}: outside the service's roots; not searched"));
            result.skipped = true;
            return result;
        }
        let mut file = match File::open(&f.path) {
            Ok(file) => file,
            Err(e) => {
                result.notes.push(format!("{label}: could not be opened ({e}); rotated or deleted since planning"));
                result.skipped = true;
                return result;
            }
        };
        let Ok(meta) = file.metadata() else {
            result.skipped = true;
            return result;
        };
        let now_id = FileId::of(&meta);
        if now_id.dev != f.id.dev || now_id.ino != f.id.ino {
            result.notes.push(format!("{label}: replaced since planning (rotated); searched the current file"));
        }
        let parser = StampParser::new(plan.format, tz, f.id.mtime());
        let spec = ScanSpec { matcher, context: plan.request.context as usize, parser: &parser, window: plan.window, file: &label };
        let mut emit = FileEmit { core: self, mem: Vec::new(), cap: max_results, spill: None, count: 0 };
        let outcome = if f.gz {
            let counting = CountingReader { inner: io::BufReader::with_capacity(256 * 1024, file), shared };
            let mut dec = flate2::read::MultiGzDecoder::new(counting);
            let ctl = FileCtl { shared, report_reads: false };
            let input = scan::ScanInput { limit: u64::MAX, match_limit: u64::MAX, ..Default::default() };
            result.abs_start_lines = Some(0);
            scan::scan(&mut dec, &input, &spec, &ctl, &mut emit)
        } else {
            let (start, end) = (item.start, item.end);
            let prep = (|| -> io::Result<(u64, Vec<u8>, Option<i64>)> {
                let lines_before = if item.chunk > 0 {
                    REL_ORIGIN
                } else if start == 0 {
                    0
                } else if let (true, Some(known)) = (start == f.start_offset, f.start_lines) {
                    known
                } else {
                    self.lines.lines_before(&mut file, now_id.dev, now_id.ino, now_id.size, start)?
                };
                // Context lines and the carried stamp from just before `start`.
                let (prefix, carried) = if start > 0 {
                    let lo = start.saturating_sub(64 * 1024);
                    let mut back = vec![0u8; (start - lo) as usize];
                    let n = files::read_full_at(&mut file, lo, &mut back)?;
                    back.truncate(n);
                    let carried = files::last_stamp(&back, lo == 0, &parser);
                    let mut keep = back.len();
                    let mut k = 0;
                    while k < plan.request.context && keep > 0 {
                        keep = memchr::memrchr(b'\n', &back[..keep - 1]).map(|i| i + 1).unwrap_or(0);
                        if keep == 0 && lo > 0 {
                            keep = back.len();
                            break;
                        }
                        k += 1;
                    }
                    (back[keep..].to_vec(), carried)
                } else {
                    (Vec::new(), None)
                };
                use std::io::Seek;
                file.seek(io::SeekFrom::Start(start))?;
                Ok((lines_before, prefix, carried))
            })();
            match prep {
                Err(e) => Err(e),
                Ok((lines_before, prefix, carried)) => {
                    if item.chunk == 0 {
                        result.abs_start_lines = Some(lines_before);
                    }
                    let ctl = FileCtl { shared, report_reads: true };
                    let input = scan::ScanInput {
                        start_abs: start,
                        start_lines: lines_before,
                        limit: end - start,
                        match_limit: item.match_end.min(end) - start,
                        record_checkpoints: true,
                        prefix: &prefix,
                        carried,
                    };
                    let mut reader = &file;
                    let r = scan::scan(&mut reader, &input, &spec, &ctl, &mut emit);
                    if let Ok(st) = &r {
                        let want = item.match_end.min(end) - start;
                        result.complete = st.stopped.is_none() && !st.past_window && st.bytes >= want;
                        if st.stopped.is_none() && !st.past_window && st.bytes < want {
                            result.notes.push(format!(
                                "{label}: shrank during the search (truncated or rotated); read {} of {} bytes",
                                st.bytes, want
                            ));
                        }
                        shared.add_bytes(want.saturating_sub(st.bytes));
                    }
                    r
                }
            }
        };
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
        result.count = emit.count;
        result.mem = emit.mem;
        if let Some(w) = emit.spill {
            match w.finish() {
                Ok(fin) => result.spill = Some(fin),
                Err(e) => result.notes.push(format!("{label}: cannot write matches beyond max_results: {e}")),
            }
        }
        result
    }

    /// The configured services with their files, sizes and time spans.
    pub fn list_services(&self) -> Vec<ServiceInfo> {
        self.services
            .iter()
            .map(|s| {
                let files = s.discover();
                let mut total = 0u64;
                let mut earliest: Option<i64> = None;
                let mut latest: Option<i64> = None;
                for p in &files {
                    let Ok(meta) = std::fs::metadata(p) else { continue };
                    let id = FileId::of(&meta);
                    total += id.size;
                    let r = self.ranges.get(p, id, s.format, s.tz);
                    if let Some(f) = r.first_ms {
                        earliest = Some(earliest.map_or(f, |e| e.min(f)));
                    }
                    if let Some(l) = r.last_ms {
                        latest = Some(latest.map_or(l, |e| e.max(l)));
                    }
                }
                ServiceInfo {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    format: s.format.as_str().to_string(),
                    file_count: files.len() as u32,
                    total_bytes: total,
                    earliest: earliest.map(timestamp::format_ms),
                    latest: latest.map(timestamp::format_ms),
                }
            })
            .collect()
    }

    /// A page of an overflow this session produced, by match index.
    pub fn read_overflow(&self, reference: &str, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
        self.overflows.read(reference, offset, limit)
    }

    /// The answer with every match inline (read back from its overflow
    /// when truncated), as another session can use it, or `None` when it
    /// holds more than `max_matches`. Overflow files belong to the session
    /// that wrote them; this is what a shared cache stores instead.
    pub fn shareable(&self, resp: &SearchResponse, max_matches: u64) -> Option<SearchResponse> {
        let Some(o) = &resp.overflow else { return Some(resp.clone()) };
        if o.total > max_matches {
            return None;
        }
        let mut all = Vec::with_capacity(o.total as usize);
        while (all.len() as u64) < o.total {
            let page = self.read_overflow(&o.reference, all.len() as u64, 10_000).ok()?;
            if page.matches.is_empty() {
                return None;
            }
            all.extend(page.matches);
        }
        Some(SearchResponse { matches: all, truncated: false, overflow: None, ..resp.clone() })
    }

    /// Present a shared answer (every match inline) to this session under
    /// its own `max_results`: the first ones inline, and when there are
    /// more, every match in an overflow of this session to page through.
    pub fn present(&self, mut resp: SearchResponse, max_results: u32) -> Result<SearchResponse, SearchError> {
        let max_results = max_results as usize;
        if resp.matches.len() <= max_results {
            return Ok(resp);
        }
        let reference = session::new_reference();
        let io_err = |e: io::Error| SearchError::internal(format!("cannot write the overflow file: {e}"));
        let mut w = JsonlWriter::create(self.session.path().join(format!("{reference}-0.jsonl"))).map_err(io_err)?;
        for m in &resp.matches {
            w.write(m).map_err(io_err)?;
        }
        let file = w.finish().map_err(io_err)?;
        let total = file.count;
        let overflow = session::Overflow { parts: vec![session::OverflowPart { first: 0, base: 0, file }], total };
        self.overflows.insert(reference.clone(), overflow);
        resp.matches.truncate(max_results);
        resp.truncated = true;
        resp.overflow = Some(OverflowRef { reference, total });
        Ok(resp)
    }
}

impl Drop for SearchCore {
    fn drop(&mut self) {
        self.session.close();
    }
}

/// `app.log.3.gz` -> 3, `app.log` -> 0 (higher = older).
fn rotation_index(path: &Path) -> u32 {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.rsplit('.').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Binary search over byte offsets for a point whose next stamped line is
/// earlier than `target`, so that everything before it is too (files are
/// roughly sorted; the caller's tolerance absorbs local disorder). Returns 0
/// when no such point is found.
pub(crate) fn window_start_offset(file: &mut File, size: u64, target: i64, parser: &StampParser) -> u64 {
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
fn resync(file: &mut File, off: u64, end: u64) -> u64 {
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

/// Plain files larger than this are split into chunks searched in parallel.
const CHUNK_BYTES: u64 = 64 * 1024 * 1024;

/// Line numbers of chunks after the first count from here (so context lines
/// before a chunk's first line stay positive); the base added at merge is
/// `lines before the chunk - REL_ORIGIN` (wrapping).
const REL_ORIGIN: u64 = 1 << 32;

/// One unit of work: a whole file, or a byte chunk of one.
struct WorkItem {
    file: usize,
    /// First byte (a line start).
    start: u64,
    /// Lines starting before this may match.
    match_end: u64,
    /// Bytes past this are not read (the planned size).
    end: u64,
    /// Index of the chunk within its file.
    chunk: u32,
    /// The file's last chunk.
    last: bool,
    #[allow(dead_code)]
    pre_note: Option<String>,
}

#[derive(Default)]
struct ItemResult {
    /// Matches kept in memory (line numbers relative to `base`).
    mem: Vec<SearchMatch>,
    /// Every match of the item, when there were more than `max_results`.
    spill: Option<FinishedJsonl>,
    count: u64,
    bytes: u64,
    /// Newlines counted in the item's range.
    lines: u64,
    /// For chunk 0: newlines before its start (its numbers are absolute).
    abs_start_lines: Option<u64>,
    /// Added to line numbers at merge.
    base: u64,
    checkpoints: Vec<(u64, u64)>,
    stopped: Option<Stop>,
    stopped_by_error: bool,
    skipped: bool,
    /// The scan covered the item's whole range (not stopped early by the
    /// window's end, a shrunk file, or anything else).
    complete: bool,
    notes: Vec<String>,
}

impl ItemResult {
    fn drop_matches(&mut self) {
        self.mem.clear();
        if let Some(s) = self.spill.take() {
            let _ = std::fs::remove_file(&s.path);
        }
        self.count = 0;
    }
}

/// Add `base` to a match's line numbers (its context's too).
pub(crate) fn shift_lines(m: &mut SearchMatch, base: u64) {
    if base == 0 {
        return;
    }
    m.line_number = m.line_number.wrapping_add(base);
    for c in m.before.iter_mut().chain(m.after.iter_mut()) {
        c.line_number = c.line_number.wrapping_add(base);
    }
}

struct Shared<'a> {
    ctl: &'a SearchControl,
    bytes_done: AtomicU64,
    bytes_total: u64,
    files_done: AtomicU32,
    files_total: u32,
    last_progress: Mutex<Instant>,
}

impl Shared<'_> {
    fn check(&self) -> Option<Stop> {
        if self.ctl.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if Instant::now() >= self.ctl.deadline {
            Some(Stop::Deadline)
        } else {
            None
        }
    }

    fn add_bytes(&self, n: u64) {
        let done = self.bytes_done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(p) = &self.ctl.progress {
            if let Some(mut last) = self.last_progress.try_lock() {
                if last.elapsed() >= Duration::from_millis(100) {
                    *last = Instant::now();
                    drop(last);
                    p(done.min(self.bytes_total), self.bytes_total, self.files_done.load(Ordering::Relaxed), self.files_total);
                }
            }
        }
    }
}

struct FileCtl<'a, 'b> {
    shared: &'a Shared<'b>,
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
    shared: &'a Shared<'b>,
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
