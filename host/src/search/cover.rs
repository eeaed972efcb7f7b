//! Narrower questions answered from a cached answer that covers them.
//!
//! Agents ask the same question over different windows and with different
//! `context` ("ERROR in payments" for the incident's 20 minutes, then for
//! the hour, then for the day). A cached answer holds every match, each with
//! its effective stamp, file and before/after lines, and none of those
//! depends on the window or on the other matches: a match's record is the
//! same whichever window selected it. So an answer for window `W`, context
//! `c` over files `F` contains the answer for any `W' ⊆ W`, `c' ≤ c` over
//! `F' ⊆ F` (same file states): keep the matches in `F'` stamped inside
//! `W'`, cut before/after to `c'` lines.
//!
//! A [`Coverage`] records what one cached answer covers; the answers to one
//! question (every parameter but the window, `context` and `max_results`;
//! the key is made in `lookup::keys`) are listed under that key, and a miss looks
//! there for one that covers it ([`Coverage::contains`]) before it
//! searches. Never stale for the same reason as the exact key: coverage
//! requires every file the narrower plan reads, freshly stat'ed, to be in the
//! covering answer with the same identity, size, mtime and byte range.
//!
//! The filter applies the window's definition exactly (effective stamp in
//! `[start, end)`; unstamped matches only without a window). A direct search
//! also assumes stamps are in order within a tolerance to seek to the window
//! and stop after it; with stamps further out of order than that, a narrowed
//! answer can hold a match the direct search would have skipped.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{SearchPlan, SearchResponse, Window};

/// What one cached answer covers, as listed under its question's key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// The answer's cache key (made in `lookup::keys`).
    pub key: String,
    /// The window as the key sees it (bounds outside the files' time ranges open).
    pub window: Option<Window>,
    pub context: u32,
    /// Digests of each file's path, identity, size, mtime and byte range; sorted.
    pub files: Vec<u64>,
}

impl Coverage {
    /// Whether the answer this describes holds the answer `narrow`
    /// describes: a window containing that one (none contains every window;
    /// a window never contains "no window", which also takes unstamped
    /// lines), at least as much context, every file of `narrow` in the
    /// same state.
    pub fn contains(&self, narrow: &Coverage) -> bool {
        let window = match (self.window, narrow.window) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a.start_ms <= b.start_ms && a.end_ms >= b.end_ms,
        };
        window && self.context >= narrow.context && narrow.files.iter().all(|d| self.files.binary_search(d).is_ok())
    }

    /// How much this answer spans, to prefer the smallest that covers
    /// (least to read and filter): window width, then context.
    pub fn span(&self) -> (i128, u32) {
        let width = self.window.map_or(i128::MAX, |w| w.end_ms as i128 - w.start_ms as i128);
        (width, self.context)
    }
}

impl SearchPlan {
    fn file_digests(&self) -> Vec<u64> {
        let mut d: Vec<u64> = self
            .files
            .iter()
            .map(|f| {
                let mut b = f.path.as_os_str().as_encoded_bytes().to_vec();
                for x in [f.id.dev, f.id.ino, f.id.size, f.id.mtime_ns as u64, f.start_offset, f.end_offset] {
                    b.extend_from_slice(&x.to_le_bytes());
                }
                super::lineindex::fingerprint(&b)
            })
            .collect();
        d.sort_unstable();
        d
    }

    /// What this plan's answer, stored under `key`, covers.
    pub fn coverage(&self, key: &str) -> Coverage {
        Coverage { key: key.to_string(), window: self.key_window(), context: self.request.context, files: self.file_digests() }
    }

    /// The covering answer `wide` (every match inline) cut to this plan:
    /// its files, its window, its context. Marked cached; nothing scanned.
    pub fn narrow(&self, mut wide: SearchResponse) -> SearchResponse {
        let files: HashSet<String> = self.files.iter().map(|f| f.path.to_string_lossy().into_owned()).collect();
        let ctx = self.request.context as usize;
        wide.matches.retain(|m| {
            files.contains(&m.file)
                && match self.window {
                    None => true,
                    Some(w) => m
                        .timestamp
                        .as_deref()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| w.contains(t.timestamp_millis())),
                }
        });
        for m in &mut wide.matches {
            let extra = m.before.len().saturating_sub(ctx);
            m.before.drain(..extra);
            m.after.truncate(ctx);
        }
        let matched: HashSet<&str> = wide.matches.iter().map(|m| m.file.as_str()).collect();
        let mut cut = SearchResponse {
            total_matches: wide.matches.len() as u64,
            files_searched: self.files.len() as u32,
            files_matched: matched.len() as u32,
            bytes_scanned: wide.bytes_scanned,
            truncated: false,
            partial: false,
            partial_reason: None,
            duration_ms: wide.duration_ms,
            overflow: None,
            cached: wide.cached,
            window_start: self.window.and_then(|w| w.start_text()),
            window_end: self.window.and_then(|w| w.end_text()),
            matches: wide.matches,
        };
        cut.mark_cache_hit();
        cut
    }
}
