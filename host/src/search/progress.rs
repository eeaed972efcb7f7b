//! One search's shared progress: whether to stop (cancelled, past the
//! deadline) and the bytes and files done, reported to the caller's
//! progress callback at most every 100 ms. Every worker of the search holds
//! it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::scan::Stop;
use super::SearchControl;

/// What every worker of one search shares: its control and its progress.
pub(super) struct Progress<'a> {
    ctl: &'a SearchControl,
    bytes_done: AtomicU64,
    bytes_total: u64,
    files_done: AtomicU32,
    files_total: u32,
    last_progress: Mutex<Instant>,
}

impl<'a> Progress<'a> {
    /// A search of `files_total` files, `bytes_total` bytes, under `ctl`.
    pub(super) fn new(ctl: &'a SearchControl, bytes_total: u64, files_total: u32) -> Self {
        Progress {
            ctl,
            bytes_done: AtomicU64::new(0),
            bytes_total,
            files_done: AtomicU32::new(0),
            files_total,
            last_progress: Mutex::new(Instant::now()),
        }
    }

    /// A work item's file is done.
    pub(super) fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn check(&self) -> Option<Stop> {
        if self.ctl.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if Instant::now() >= self.ctl.deadline {
            Some(Stop::Deadline)
        } else {
            None
        }
    }

    pub(super) fn add_bytes(&self, n: u64) {
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
