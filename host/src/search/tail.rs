//! Incremental answers for growing logs.
//!
//! A finished search leaves a [`Tail`]: its answer, its window, and where
//! each file stood (identity, size, mtime, newlines up to that size, a
//! digest of the last bytes). The next search of the same request over the
//! same files (under its tail key, `lookup::keys::tail`, which leaves sizes
//! out) resumes from it when that is provably the same as searching from
//! scratch:
//!
//! - every file is the same file (path, device, inode); `.gz` and plain
//!   files that did not grow are unchanged (size and mtime); a plain file
//!   that grew still ends, at the old size, with the same bytes (digest of
//!   its last 4 KiB), so it was appended to, not rewritten;
//! - the window only moved forward (`minutes_back` asked again later), and
//!   no line already searched was stamped at or after the old window's end
//!   (the file's last stamp was before it), so lines the old answer left out
//!   as "too new" cannot exist;
//! - the old answer was complete (not partial; a tail holds every match, so
//!   a truncated answer leaves one too, up to a size cap).
//!
//! Then only the appended bytes are scanned, starting a little before the
//! old end: at the start of a line left unfinished by the writer, and
//! `context` lines earlier, so matches near the old end get their full
//! after-context. The old answer's matches in that overlap are replaced by
//! the rescan's; the rest are kept if still inside the (moved) window.
//! The merged answer (every match) is presented under the caller's
//! `max_results` like a cache hit: the rest goes to an overflow of this
//! session. Anything else is answered by a full search.

use std::fs::File;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::files::read_full_at;
use super::lineindex::{count_newlines, fingerprint};
use super::{Executed, SearchControl, SearchCore, SearchError, SearchMatch, SearchPlan, SearchResponse, Window};

/// Bytes at the end of a searched file whose digest proves it was only appended to.
const DIGEST_BYTES: u64 = 4096;
/// How far back the resumed scan may start (an unfinished line plus context).
const MAX_BACKTRACK: u64 = 64 * 1024;

/// What a search leaves for the next one over the same files.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tail {
    pub window: Option<Window>,
    pub files: Vec<TailFile>,
    pub response: SearchResponse,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TailFile {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub gz: bool,
    pub size: u64,
    pub mtime_ns: i64,
    /// Newlines in `[0, size)`; unknown for `.gz` or an incomplete scan.
    pub lines_at_end: Option<u64>,
    /// The file's last stamp at `size`.
    pub last_ms: Option<i64>,
    /// FNV-1a of the last [`DIGEST_BYTES`] before `size`.
    pub digest: u64,
}

/// How a search was answered.
#[derive(Debug)]
pub struct Answer {
    pub response: Result<SearchResponse, SearchError>,
    /// What to keep for the next search of this request (none when the
    /// answer is partial, truncated or a file's end state is unknown).
    pub tail: Option<Tail>,
    /// Whether the previous tail was used (only appended bytes scanned).
    pub resumed: bool,
}

fn digest_at(file: &mut File, size: u64) -> Option<u64> {
    let lo = size.saturating_sub(DIGEST_BYTES);
    let mut buf = vec![0u8; (size - lo) as usize];
    let n = read_full_at(file, lo, &mut buf).ok()?;
    (n == buf.len()).then(|| fingerprint(&buf))
}

/// One grown file of a resumed search.
struct Grown {
    file: usize,
    /// Where the rescan starts, and the newlines before it.
    start: u64,
    start_lines: u64,
}

impl SearchCore {
    /// Answer `plan`, resuming from `prev` (the tail stored under its
    /// tail key) when that gives the same answer as a full search,
    /// else searching in full. Tails hold every match (up to `max_matches`;
    /// see [`SearchCore::shareable`]), so a truncated answer leaves one too.
    pub fn execute_resumable(&self, plan: &SearchPlan, prev: Option<&Tail>, ctl: &SearchControl, max_matches: u64) -> Answer {
        if let Some(prev) = prev {
            if let Some(answer) = self.resume(plan, prev, ctl, max_matches) {
                return answer;
            }
        }
        match self.execute_tracked(plan, ctl) {
            Ok(executed) => {
                let tail = self.tail_of(plan, &executed, None, max_matches);
                Answer { response: Ok(executed.response), tail, resumed: false }
            }
            Err(e) => Answer { response: Err(e), tail: None, resumed: false },
        }
    }

    fn resume(&self, plan: &SearchPlan, prev: &Tail, ctl: &SearchControl, max_matches: u64) -> Option<Answer> {
        let old = &prev.response;
        if old.truncated || old.partial || old.overflow.is_some() || old.matches.len() as u64 != old.total_matches {
            return None;
        }
        if plan.files.len() != prev.files.len() || !window_moved_forward(prev.window, plan.window) {
            return None;
        }
        let grown = grown_files(plan, prev)?;
        let labels: Vec<String> = plan.files.iter().map(|f| f.path.to_string_lossy().to_string()).collect();
        let file_of = |m: &SearchMatch| labels.iter().position(|l| *l == m.file);
        let kept = kept_matches(plan, old, &grown, &file_of)?;
        let executed = match self.scan_appended(plan, &grown, ctl) {
            Ok(e) => e,
            Err(e) => return Some(Answer { response: Err(e), tail: None, resumed: true }),
        };
        // Every match of the delta (read back from its overflow if it had one).
        let fresh = self.shareable(&executed.response, max_matches)?;
        if kept.len() as u64 + fresh.total_matches > max_matches {
            return None;
        }
        let mut all: Vec<(usize, SearchMatch)> = kept;
        for m in &fresh.matches {
            all.push((file_of(m)?, m.clone()));
        }
        let response = merged(plan, all, &fresh);
        // Line counts at the new ends: rescanned files from the delta,
        // unchanged ones from the old tail.
        let mut lines_at_end: Vec<Option<u64>> = prev.files.iter().map(|f| f.lines_at_end).collect();
        for (k, g) in grown.iter().enumerate() {
            lines_at_end[g.file] = executed.lines_at_end.get(k).copied().flatten();
        }
        let merged = Executed { response, lines_at_end, finished: Vec::new() };
        let tail = self.tail_of(plan, &merged, Some(prev), max_matches);
        // Nothing scanned: the whole answer came from the cached tail.
        let mut response = merged.response;
        response.cached = response.bytes_scanned == 0;
        let response = self.present(response, plan.request.max_results);
        Some(Answer { response, tail, resumed: true })
    }

    /// Scan what was appended to the grown files.
    fn scan_appended(&self, plan: &SearchPlan, grown: &[Grown], ctl: &SearchControl) -> Result<Executed, SearchError> {
        let mut delta = plan.clone();
        delta.files = grown
            .iter()
            .map(|g| {
                let mut f = plan.files[g.file].clone();
                f.start_offset = g.start;
                f.start_lines = Some(g.start_lines);
                f
            })
            .collect();
        if delta.files.is_empty() {
            return Ok(Executed { response: SearchResponse::default(), lines_at_end: Vec::new(), finished: Vec::new() });
        }
        self.execute_tracked(&delta, ctl)
    }
}

/// The files that grew since `prev` (each appended to, not rewritten), and
/// where to rescan them; `None` when any file differs otherwise, or lines
/// already searched may have been left out as past the old window.
fn grown_files(plan: &SearchPlan, prev: &Tail) -> Option<Vec<Grown>> {
    let context = plan.request.context as usize;
    let mut grown = Vec::new();
    for (i, (now, then)) in plan.files.iter().zip(&prev.files).enumerate() {
        if now.path != then.path || now.id.dev != then.dev || now.id.ino != then.ino || now.gz != then.gz {
            return None;
        }
        // Lines searched before must all be before the old window's end.
        if let Some(w) = prev.window {
            if w.end_ms != i64::MAX && plan.window.is_some_and(|n| n.end_ms != w.end_ms) && then.last_ms.is_none_or(|l| l >= w.end_ms) {
                return None;
            }
        }
        if now.id.size == then.size && now.id.mtime_ns == then.mtime_ns {
            continue;
        }
        if now.gz || now.id.size < then.size {
            return None;
        }
        let lines_at_end = then.lines_at_end?;
        let mut f = File::open(&now.path).ok()?;
        if now.id.size == then.size || digest_at(&mut f, then.size)? != then.digest {
            return None;
        }
        let (start, newlines) = backtrack(&mut f, then.size, context)?;
        grown.push(Grown { file: i, start, start_lines: lines_at_end - newlines });
    }
    Some(grown)
}

/// The old answer's matches still inside the (moved) window, minus those
/// the rescan of grown files replaces, with their file's index.
fn kept_matches(
    plan: &SearchPlan,
    old: &SearchResponse,
    grown: &[Grown],
    file_of: &dyn Fn(&SearchMatch) -> Option<usize>,
) -> Option<Vec<(usize, SearchMatch)>> {
    let mut kept: Vec<(usize, SearchMatch)> = Vec::with_capacity(old.matches.len());
    for m in &old.matches {
        let fi = file_of(m)?;
        if grown.iter().any(|g| g.file == fi && m.line_number > g.start_lines) {
            continue;
        }
        if let Some(w) = plan.window {
            let ms = m.timestamp.as_deref().and_then(parse_ms)?;
            if !w.contains(ms) {
                continue;
            }
        }
        kept.push((fi, m.clone()));
    }
    Some(kept)
}

/// The answer from the kept and the rescanned matches (every match, in
/// file and line order).
fn merged(plan: &SearchPlan, mut all: Vec<(usize, SearchMatch)>, fresh: &SearchResponse) -> SearchResponse {
    all.sort_by_key(|(fi, m)| (*fi, m.line_number));
    let mut matched = vec![false; plan.files.len()];
    for (fi, _) in &all {
        matched[*fi] = true;
    }
    SearchResponse {
        total_matches: all.len() as u64,
        matches: all.into_iter().map(|(_, m)| m).collect(),
        files_searched: plan.files.len() as u32,
        files_matched: matched.iter().filter(|m| **m).count() as u32,
        bytes_scanned: fresh.bytes_scanned,
        truncated: false,
        partial: fresh.partial,
        partial_reason: fresh.partial_reason.clone(),
        duration_ms: fresh.duration_ms,
        overflow: None,
        cached: false,
        window_start: plan.window.and_then(|w| w.start_text()),
        window_end: plan.window.and_then(|w| w.end_text()),
    }
}

impl SearchCore {
    /// The tail a finished search leaves (none if it cannot be resumed from:
    /// partial, over `max_matches`, or a file's end state unknown).
    fn tail_of(&self, plan: &SearchPlan, executed: &Executed, prev: Option<&Tail>, max_matches: u64) -> Option<Tail> {
        if executed.response.partial {
            return None;
        }
        let r = &self.shareable(&executed.response, max_matches)?;
        let mut files = Vec::with_capacity(plan.files.len());
        for (i, f) in plan.files.iter().enumerate() {
            let unchanged =
                prev.and_then(|p| p.files.get(i)).filter(|t| t.size == f.id.size && t.mtime_ns == f.id.mtime_ns && t.path == f.path);
            let digest = match unchanged {
                Some(t) => t.digest,
                None if f.gz => 0,
                None => digest_at(&mut File::open(&f.path).ok()?, f.end_offset)?,
            };
            files.push(TailFile {
                path: f.path.clone(),
                dev: f.id.dev,
                ino: f.id.ino,
                gz: f.gz,
                size: f.id.size,
                mtime_ns: f.id.mtime_ns,
                lines_at_end: executed.lines_at_end.get(i).copied().flatten(),
                last_ms: f.range.last_ms,
                digest,
            });
        }
        Some(Tail { window: plan.window, files, response: r.clone() })
    }
}

/// The same window, or one whose both ends moved forward (or none both times).
fn window_moved_forward(then: Option<Window>, now: Option<Window>) -> bool {
    match (then, now) {
        (None, None) => true,
        (Some(a), Some(b)) => b.start_ms >= a.start_ms && b.end_ms >= a.end_ms,
        _ => false,
    }
}

/// Where to restart scanning a file that was searched up to `end`: the
/// start of a line the writer had not finished at `end`, then `context`
/// lines earlier. Returns that offset and the newlines in `[offset, end)`.
fn backtrack(file: &mut File, end: u64, context: usize) -> Option<(u64, u64)> {
    if end == 0 {
        return Some((0, 0));
    }
    let lo = end.saturating_sub(MAX_BACKTRACK);
    let mut buf = vec![0u8; (end - lo) as usize];
    let n = read_full_at(file, lo, &mut buf).ok()?;
    if n != buf.len() {
        return None;
    }
    // `at` is a line start (relative to `lo`).
    let mut at = buf.len();
    if buf.last() != Some(&b'\n') {
        at = memchr::memrchr(b'\n', &buf).map(|i| i + 1)?;
        if at == 0 && lo > 0 {
            return None;
        }
    }
    for _ in 0..context {
        if at == 0 {
            break;
        }
        match memchr::memrchr(b'\n', &buf[..at - 1]) {
            Some(i) => at = i + 1,
            None if lo == 0 => at = 0,
            None => return None,
        }
    }
    Some((lo + at as u64, count_newlines(&buf[at..])))
}

fn parse_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtrack_finds_unfinished_lines_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"a\nb\nc\npart").unwrap();
        let mut f = File::open(&p).unwrap();
        // Unfinished last line: restart at its start.
        assert_eq!(backtrack(&mut f, 10, 0), Some((6, 0)));
        // ... and one context line earlier.
        assert_eq!(backtrack(&mut f, 10, 1), Some((4, 1)));
        // Finished: restart at the end, or context lines earlier.
        assert_eq!(backtrack(&mut f, 6, 0), Some((6, 0)));
        assert_eq!(backtrack(&mut f, 6, 2), Some((2, 2)));
        assert_eq!(backtrack(&mut f, 6, 9), Some((0, 3)));
    }

    #[test]
    fn windows_may_only_move_forward() {
        let w = |a, b| Some(Window { start_ms: a, end_ms: b });
        assert!(window_moved_forward(None, None));
        assert!(window_moved_forward(w(10, 20), w(10, 20)));
        assert!(window_moved_forward(w(10, 20), w(15, 25)));
        assert!(!window_moved_forward(w(10, 20), w(5, 25)));
        assert!(!window_moved_forward(w(10, 20), w(10, 15)));
        assert!(!window_moved_forward(None, w(10, 20)));
    }
}
