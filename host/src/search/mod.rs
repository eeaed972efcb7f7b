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
//! Rooms: `plan.rs` (request → plan: window, files, pruning), `engine.rs`
//! (work items on scoped threads, merged in file order), `progress.rs`
//! (when to stop, bytes and files done, shared by the workers), `item.rs` (one
//! item read), `scan.rs` (the line scanner), `seek.rs` (window start, line
//! starts), `present.rs` (overflow pages, answers shared across sessions),
//! `tail.rs` (resuming a grown log), `follow.rs` (cursors: what
//! was appended since, through rotation), `cover.rs` (narrowing a covering
//! answer); `files.rs`, `lineindex.rs`, `session.rs`, `timestamp.rs`,
//! `window.rs` hold what those share. Cache keys are not made here
//! (`lookup::keys`).
//!
//! Blocking: run `plan`/`execute` on a blocking thread (`spawn_blocking`).
//! See `docs/search.md` for the semantics (timestamps, windows, binary data,
//! context, overflow, confinement).

pub mod api;
pub mod cli;
pub mod cover;
mod engine;
pub mod files;
pub mod fold;
pub mod follow;
mod item;
pub mod lineindex;
mod plan;
mod present;
mod progress;
pub mod scan;
mod seek;
pub mod session;
pub mod tail;
pub mod timestamp;
pub mod window;

#[cfg(test)]
mod tests;

pub use api::*;
pub use cli::{run_cli, SearchArgs};
pub use engine::Executed;
pub use fold::{Fold, FoldSpec};
pub use follow::{Cursor, FollowPlan};
pub use plan::{PlannedFile, SearchPlan};
pub use session::SessionDir;
pub use timestamp::LogFormat;
pub use window::Window;

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

pub use tokio_util::sync::CancellationToken;

use crate::config::Config;
use files::{RangeCache, Service};
use lineindex::LineIndex;
use session::OverflowStore;

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
}

impl Drop for SearchCore {
    fn drop(&mut self) {
        self.session.close();
    }
}

/// Plain files larger than this are split into chunks searched in parallel.
const CHUNK_BYTES: u64 = 64 * 1024 * 1024;
