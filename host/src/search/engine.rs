//! The parallel engine: a plan split into work items (whole files, or byte
//! chunks of large plain files), searched on scoped threads, merged in file
//! order with absolute line numbers and an overflow for what is past
//! `max_results`.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono_tz::Tz;
use grep_regex::RegexMatcher;
use parking_lot::Mutex;

use super::files::Service;
use super::fold::{Fold, FoldSpec};
use super::item::{ItemJob, ItemResult, WorkItem, REL_ORIGIN};
use super::progress::Progress;
use super::scan::{Stop, TOLERANCE_MS};
use super::seek::{resync, window_start_offset};
use super::session::{self, FinishedJsonl, JsonlWriter};
use super::timestamp::StampParser;
use super::{OverflowRef, SearchControl, SearchCore, SearchError, SearchPlan, SearchResponse};

/// What [`SearchCore::execute_tracked`] returns.
pub struct Executed {
    pub response: SearchResponse,
    /// Per plan file: newlines in `[0, end_offset)` when the whole file up
    /// to `end_offset` was accounted for (plain files only).
    pub lines_at_end: Vec<Option<u64>>,
    /// Per plan file: nothing of it is left to read for this plan (read to
    /// its end, or to lines past the window's end).
    pub finished: Vec<bool>,
}

impl SearchCore {
    /// Run a plan. Stops early (marked partial) on cancellation or deadline.
    pub fn execute(&self, plan: &SearchPlan, ctl: &SearchControl) -> Result<SearchResponse, SearchError> {
        self.execute_tracked(plan, ctl).map(|e| e.response)
    }

    /// [`SearchCore::execute`], also reporting where each file's scan ended
    /// (what a later search of the grown file resumes from; see [`super::tail`]).
    pub fn execute_tracked(&self, plan: &SearchPlan, ctl: &SearchControl) -> Result<Executed, SearchError> {
        self.run(plan, ctl, None).map(|(e, _)| e)
    }

    /// Run a plan folding every selected line (in the window, matching the
    /// pattern) into `spec`'s folds instead of keeping matches: the answer's
    /// counts (no matches, no overflow) and the folds merged in file order
    /// (`None` when no item was read).
    pub fn execute_fold(
        &self,
        plan: &SearchPlan,
        ctl: &SearchControl,
        spec: &dyn FoldSpec,
    ) -> Result<(SearchResponse, Option<Box<dyn Fold>>), SearchError> {
        self.run(plan, ctl, Some(spec)).map(|(e, f)| (e.response, f))
    }

    fn run(
        &self,
        plan: &SearchPlan,
        ctl: &SearchControl,
        fold: Option<&dyn FoldSpec>,
    ) -> Result<(Executed, Option<Box<dyn Fold>>), SearchError> {
        let started = Instant::now();
        let matcher = match &plan.matcher {
            Some(m) => m.clone(),
            None => Arc::new(self.build_matcher(&plan.request)?),
        };
        let service = self.service(&plan.service)?;
        let tz: Tz = plan.timezone.parse().unwrap_or(Tz::UTC);
        // Folding keeps no match: nothing inline, no overflow.
        let max_results = if fold.is_some() { usize::MAX } else { plan.request.max_results as usize };
        let shared = Progress::new(ctl, plan.bytes_total(), plan.files.len() as u32);
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
                            self.search_item(&ItemJob { plan, tz, matcher: &matcher, max_results, shared: &shared, fold }, item)
                        };
                        if item.last {
                            shared.file_done();
                        }
                        *results[i].lock() = Some(r);
                    }
                });
            }
        });
        let mut results: Vec<ItemResult> = results.into_iter().map(|m| m.into_inner().unwrap_or_default()).collect();
        let lines_at_end = self.line_bases(plan, &items, &mut results);
        let folded = fold.and_then(|_| folded(&mut results));
        self.merge(plan, &items, results, max_results, started, lines_at_end).map(|e| (e, folded))
    }

    /// Split the plan into work items: one per file, or several byte chunks
    /// for large plain files (searched in parallel, line numbers fixed up
    /// at merge). Plain files start at the window's binary-searched offset.
    fn work_items(&self, plan: &SearchPlan, service: &Service, tz: Tz, shared: &Progress<'_>) -> Vec<WorkItem> {
        let mut items = Vec::new();
        for (fi, f) in plan.files.iter().enumerate() {
            let whole = WorkItem { file: fi, start: 0, match_end: u64::MAX, end: u64::MAX, chunk: 0, last: true };
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
                items.push(WorkItem { file: fi, start: bounds[k], match_end: bounds[k + 1], end, chunk: k as u32, last: k + 1 == chunks });
            }
        }
        items
    }

    /// The items' results as one answer, in file order: line numbers made
    /// absolute, counts, why it is partial, the first `max_results` inline
    /// and, past those, every match in an overflow.
    fn merge(
        &self,
        plan: &SearchPlan,
        items: &[WorkItem],
        results: Vec<ItemResult>,
        max_results: usize,
        started: Instant,
        lines_at_end: Vec<Option<u64>>,
    ) -> Result<Executed, SearchError> {
        let mut finished = vec![true; plan.files.len()];
        for (item, r) in items.iter().zip(&results) {
            finished[item.file] &= r.finished && !r.skipped && !r.stopped_by_error;
        }
        let mut resp = counted(plan, items, &results);
        // Inline: the first max_results in order, with absolute line numbers.
        'outer: for r in &results {
            for m in &r.mem {
                if resp.matches.len() >= max_results {
                    break 'outer;
                }
                let mut m = m.clone();
                session::shift_lines(&mut m, r.base);
                resp.matches.push(m);
            }
        }
        if resp.total_matches > max_results as u64 {
            resp.truncated = true;
            resp.overflow = Some(self.overflow(results)?);
        } else {
            for r in results {
                if let Some(s) = r.spill {
                    let _ = std::fs::remove_file(&s.path);
                }
            }
        }
        resp.duration_ms = started.elapsed().as_millis() as u64;
        Ok(Executed { response: resp, lines_at_end, finished })
    }

    /// Give each item its line base (chunk k of a file continues chunk k-1's
    /// count; a chunk after one that stopped early has unknown numbers and
    /// its matches are dropped) and record line checkpoints. Returns the
    /// newlines in `[0, end_offset)` per plain file, when every part of it
    /// was scanned to its end (a later search of the grown file starts its
    /// line numbers there).
    fn line_bases(&self, plan: &SearchPlan, items: &[WorkItem], results: &mut [ItemResult]) -> Vec<Option<u64>> {
        let mut lines_at_end: Vec<Option<u64>> = vec![None; plan.files.len()];
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
            if !r.checkpoints.is_empty() && !broken {
                self.record_checkpoints(plan, item, r);
            }
        }
        lines_at_end
    }

    /// Record an item's line checkpoints (absolute).
    fn record_checkpoints(&self, plan: &SearchPlan, item: &WorkItem, r: &ItemResult) {
        let f = &plan.files[item.file];
        if let Ok(mut file) = File::open(&f.path) {
            let cps: Vec<(u64, u64)> = r.checkpoints.iter().map(|&(o, l)| (o, l.wrapping_add(r.base))).collect();
            self.lines.record(&mut file, f.id.dev, f.id.ino, f.id.size, &cps);
        }
    }

    /// Every match, in order: each item's spill file (or its in-memory
    /// matches) becomes one part of an overflow of this session; nothing is
    /// copied.
    fn overflow(&self, results: Vec<ItemResult>) -> Result<OverflowRef, SearchError> {
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
        let out = OverflowRef { reference: reference.clone(), total: overflow.total };
        self.overflows.insert(reference, overflow);
        Ok(out)
    }
}

/// The items' folds, line numbers made absolute, merged in file order.
fn folded(results: &mut [ItemResult]) -> Option<Box<dyn Fold>> {
    let mut acc: Option<Box<dyn Fold>> = None;
    for r in results {
        let Some(mut f) = r.fold.take() else { continue };
        if r.base != 0 {
            f.rebase(r.base);
        }
        match &mut acc {
            Some(a) => a.absorb(f),
            None => acc = Some(f),
        }
    }
    acc
}

/// The answer's counts, window and partial reason (no matches yet).
fn counted(plan: &SearchPlan, items: &[WorkItem], results: &[ItemResult]) -> SearchResponse {
    let mut searched = vec![false; plan.files.len()];
    let mut matched = vec![false; plan.files.len()];
    for (item, r) in items.iter().zip(results) {
        searched[item.file] |= !r.skipped;
        matched[item.file] |= r.count > 0;
    }
    let reasons = partial_reasons(plan, results, searched.iter().filter(|x| !**x).count());
    SearchResponse {
        total_matches: results.iter().map(|r| r.count).sum(),
        files_searched: searched.iter().filter(|x| **x).count() as u32,
        files_matched: matched.iter().filter(|x| **x).count() as u32,
        bytes_scanned: results.iter().map(|r| r.bytes).sum(),
        window_start: plan.window.and_then(|w| w.start_text()),
        window_end: plan.window.and_then(|w| w.end_text()),
        partial: !reasons.is_empty(),
        partial_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        ..SearchResponse::default()
    }
}

/// Why an answer is partial (none when it is complete): a stop, the files
/// it left unsearched, each item's notes (once each).
fn partial_reasons(plan: &SearchPlan, results: &[ItemResult], unsearched: usize) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    if let Some(stop) = results.iter().find_map(|r| r.stopped) {
        reasons.push(match stop {
            Stop::Cancelled => "cancelled".to_string(),
            Stop::Deadline => "deadline: the search timed out; results cover what was searched".to_string(),
        });
    }
    if unsearched > 0 && !reasons.is_empty() {
        reasons.push(format!("{unsearched} of {} files not searched", plan.files.len()));
    }
    for r in results {
        for n in &r.notes {
            if !reasons.contains(n) {
                reasons.push(n.clone());
            }
        }
    }
    reasons
}
