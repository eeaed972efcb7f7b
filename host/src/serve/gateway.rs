//! The host side of the plugins' `search` import: one search, end to end.
//!
//! rate limit (per user, system wide) → plan (validate, resolve the window,
//! list files with their state) → shared cache lookup (the key covers every
//! parameter and each file's identity/size/mtime) → on a miss, a permit
//! (global + per service, leased) → the search core on a blocking thread →
//! cache store → release → metrics.
//!
//! On a miss, an answer to the same question that covers this one (a
//! window containing it, at least as much context, the same files in the
//! same state) is cut down to it instead (`search::cover`).
//!
//! Answers are cached with every match inline (a truncated answer's
//! overflow file belongs to the session that ran the search, so it is read
//! back first) and `max_results` is not in the key: a hit is cut to the
//! caller's `max_results`, the rest written to an overflow of the caller's
//! session, which it pages like any other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::call::CallScope;
use crate::config::Config;
use crate::coord::names::{self, label, CacheOp, CacheVia, Cached};
use crate::coord::{Coordinator, MetricsSnapshot, PermitError};
use crate::search::cover::Coverage;
use crate::search::tail::Tail;
use crate::search::{
    OverflowPage, SearchControl, SearchCore, SearchError, SearchErrorKind, SearchPlan, SearchRequest, SearchResponse, ServiceInfo,
};

/// How long before a call's deadline a queued search gives up waiting
/// for a permit, so the plugin still has time to return the "busy" answer.
const BUSY_ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Answers listed per question for narrower asks to be cut from (newest kept).
const QUESTION_ANSWERS_KEPT: usize = 32;
/// Answers over more files than this are not listed (each file is a digest
/// in the listing, read on every miss of the question).
const QUESTION_LISTED_FILES_MAX: usize = 1024;

/// Searches for the plugins, coordinated with every other session.
pub struct Gateway {
    core: Arc<SearchCore>,
    /// Started in the background so Redis never delays the first answer.
    coord: Arc<OnceCell<Coordinator>>,
    coord_start: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Coordinator>>>,
    cache_enabled: bool,
    search_timeout: Duration,
    max_results_cap: u32,
    max_context: u32,
    default_max_results: u32,
    global_limit: u32,
    /// Most matches an answer may have to be shared through the cache.
    max_shared_matches: u64,
}

impl Gateway {
    pub fn new(config: &Config, core: SearchCore) -> Arc<Gateway> {
        let (redis, mut limits, cache) = (config.redis.clone(), config.limits.clone(), config.cache.clone());
        limits.slot_dir = config.slot_dir().display().to_string();
        let handle = tokio::spawn(async move { Coordinator::start(&redis, &limits, &cache).await });
        Arc::new(Gateway {
            core: Arc::new(core),
            coord: Arc::new(OnceCell::new()),
            coord_start: tokio::sync::Mutex::new(Some(handle)),
            cache_enabled: config.cache.enabled,
            search_timeout: Duration::from_millis(config.limits.search_timeout_ms),
            max_results_cap: config.limits.max_results_cap,
            max_context: config.limits.max_context_lines,
            default_max_results: config.limits.default_max_results,
            global_limit: config.limits.max_global_searches,
            // Stored compressed (LZ4): at 20 bytes a match at least, more
            // would exceed max_entry_kb anyway.
            max_shared_matches: config.cache.max_entry_kb * 1024 / 20,
        })
    }

    /// The coordinator if something already waited for its start.
    pub fn started_coordinator(&self) -> Option<&Coordinator> {
        self.coord.get()
    }

    /// The coordinator, once its start (Redis connect or fallback) is done.
    pub async fn coordinator(&self) -> &Coordinator {
        self.coord
            .get_or_init(|| async {
                let handle = self.coord_start.lock().await.take();
                match handle {
                    Some(h) => h.await.expect("coordinator start panicked"),
                    None => unreachable!("coordinator start taken twice"),
                }
            })
            .await
    }

    /// Bound what the agent asked for by the configured caps.
    fn bounded(&self, mut req: SearchRequest) -> Result<SearchRequest, SearchError> {
        if req.max_results == 0 {
            req.max_results = self.default_max_results;
        }
        if req.max_results > self.max_results_cap {
            return Err(SearchError::invalid(
                "max_results",
                format!("max_results = {} is over the cap of {} (limits.max_results_cap)", req.max_results, self.max_results_cap),
            ));
        }
        if req.context > self.max_context {
            return Err(SearchError::invalid(
                "context",
                format!("context = {} is over the cap of {} (limits.max_context_lines)", req.context, self.max_context),
            ));
        }
        Ok(req)
    }

    pub async fn search(self: Arc<Self>, scope: CallScope, req: SearchRequest) -> Result<SearchResponse, SearchError> {
        let started = Instant::now();
        let service = req.service.clone();
        let span = crate::telemetry::spans::search(&req);
        let result = self.search_inner(&scope, req).instrument(span.clone()).await;
        crate::telemetry::spans::record_search(&span, &result);
        let coord = self.coordinator().await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &result {
            Ok(resp) => {
                let cached = Cached::of(resp.cached).as_str();
                coord.metrics().incr(names::SEARCHES_TOTAL, &[(label::SERVICE, &service), (label::CACHED, cached)], 1.0);
                coord.metrics().observe(names::SEARCH_DURATION_MS, &[(label::SERVICE, &service)], elapsed_ms);
            }
            Err(e) => {
                coord.metrics().incr(names::ERRORS_TOTAL, &[(label::KIND, crate::telemetry::spans::error_kind(e.kind).as_str())], 1.0);
            }
        }
        result
    }

    async fn search_inner(&self, scope: &CallScope, req: SearchRequest) -> Result<SearchResponse, SearchError> {
        let req = self.bounded(req)?;
        let coord = self.coordinator().await;
        coord.check_rate(&scope.user).await.map_err(|e| SearchError::new(SearchErrorKind::RateLimited, e.to_string()))?;

        let core = self.core.clone();
        // Relative windows (`minutes_back`) resolve against `now` rounded up
        // to the next whole second, so the same question asked within that
        // second shares one cache key. Never stale: the key also covers each
        // file's size and mtime, so a grown log is a different key.
        let now = ceil_to_second(chrono::Utc::now());
        let plan = tokio::task::spawn_blocking(move || core.plan(&req, now))
            .await
            .map_err(|e| SearchError::internal(format!("search planning failed: {e}")))??;

        let key = plan.cache_key();
        // On a miss: the question this answers and what its answer will
        // cover, to look for a covering answer and to list this one once
        // stored (not made on a hit, nor without a cache).
        let mut listing: Option<(String, Coverage)> = None;
        // Single flight: when several sessions miss on the same key at once,
        // one searches and the others wait for its answer (bounded).
        let mut claim = None;
        if self.cache_enabled {
            let t = Instant::now();
            let max_wait = scope.remaining().min(self.search_timeout);
            let span = crate::telemetry::spans::cache_lookup();
            let looked = coord.cache_get_or_claim(&key, max_wait).instrument(span.clone()).await;
            span.record("hit", looked.is_ok());
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            coord.metrics().observe(names::CACHE_OP_DURATION_MS, &[(label::OP, CacheOp::Get.as_str())], ms);
            match looked {
                Ok(bytes) => {
                    if let Ok(mut resp) = serde_json::from_slice::<SearchResponse>(&bytes) {
                        coord.metrics().incr(names::CACHE_HITS_TOTAL, &[(label::VIA, CacheVia::Key.as_str())], 1.0);
                        // What this call did (nothing scanned), not what the
                        // search that stored it did: as a narrowed hit.
                        resp.mark_cache_hit();
                        // The key leaves out window bounds outside the
                        // files' time ranges: report this request's window.
                        resp.window_start = plan.window.and_then(|w| w.start_text());
                        resp.window_end = plan.window.and_then(|w| w.end_text());
                        // Every match is stored: cut to this caller's
                        // max_results, the rest to an overflow of this session.
                        let (core, max_results) = (self.core.clone(), plan.request.max_results);
                        return tokio::task::spawn_blocking(move || core.present(resp, max_results))
                            .await
                            .map_err(|e| SearchError::internal(format!("presenting a cached answer failed: {e}")))?;
                    }
                    // Not an answer (written by another version?): search.
                    coord.metrics().incr(names::CACHE_MISSES_TOTAL, &[], 1.0);
                    listing = Some((plan.question_key(), plan.coverage(&key)));
                }
                Err(c) => {
                    // A cached answer to the same question over a wider
                    // window or with more context holds this one.
                    let (question, coverage) = listing.insert((plan.question_key(), plan.coverage(&key)));
                    if let Some(resp) = self.from_covering(coord, &plan, question, coverage).await {
                        coord.metrics().incr(names::CACHE_HITS_TOTAL, &[(label::VIA, CacheVia::Narrowed.as_str())], 1.0);
                        // Dropping the claim lets the waiters read what was just stored.
                        drop(c);
                        return resp;
                    }
                    coord.metrics().incr(names::CACHE_MISSES_TOTAL, &[], 1.0);
                    claim = Some(c);
                }
            }
        }

        let progress = scope.progress.clone();
        let permit_span = crate::telemetry::spans::permit(&plan.service);
        let wait_started = Instant::now();
        let last_status = Arc::new(parking_lot::Mutex::new(None));
        let seen = last_status.clone();
        // Give up in time to answer "busy" (naming the limit) before the
        // call's own deadline stops it with a time-limit error.
        let by = scope.deadline.checked_sub(BUSY_ANSWER_MARGIN);
        let permit = coord
            .acquire_by(&plan.service, &scope.cancel, by, move |status| {
                *seen.lock() = Some(status);
                progress.report(0.0, None, Some(status.to_string()));
            })
            .instrument(permit_span.clone())
            .await
            .map_err(|e| match e {
                PermitError::Busy { message, .. } => SearchError::new(SearchErrorKind::Busy, message),
                PermitError::Cancelled => SearchError::new(SearchErrorKind::Cancelled, "the search was cancelled while queued"),
            })?;
        permit_span.record("waited_ms", wait_started.elapsed().as_secs_f64() * 1000.0);
        permit_span.record("permits_limit", self.global_limit as f64);
        // Known when the search queued (the last status seen); a grant
        // without waiting would need a Redis round trip to count holders.
        if let Some(st) = *last_status.lock() {
            permit_span.record("permits_in_use", (st.running_global + 1).min(st.limit_global) as f64);
        }

        let deadline = scope.deadline.min(Instant::now() + self.search_timeout);
        let mut ctl = SearchControl::new(scope.cancel.clone(), deadline);
        if scope.progress.is_active() {
            let progress = scope.progress.clone();
            ctl = ctl.with_progress(move |bytes, total, files, files_total| {
                progress.report(
                    bytes as f64,
                    Some(total as f64),
                    Some(format!("searched {files}/{files_total} files, {} of {} MB", bytes >> 20, total >> 20)),
                );
            });
        }
        // A growing log asked about again: resume from the tail the last
        // search of this request left, scanning only the appended bytes.
        let tail_key = plan.tail_key();
        let prev = match self.cache_enabled {
            true => coord.cache_peek(&tail_key).await.and_then(|b| serde_json::from_slice::<Tail>(&b).ok()),
            false => None,
        };
        let service = plan.service.clone();
        let core = self.core.clone();
        let scan = crate::telemetry::spans::scan(&plan.service);
        let cap = self.max_shared_matches;
        let result = tokio::task::spawn_blocking(move || scan.in_scope(|| core.execute_resumable(&plan, prev.as_ref(), &ctl, cap)))
            .await
            .map_err(|e| SearchError::internal(format!("search failed: {e}")));
        // The slots go back now; the Redis lease in the background (a slow
        // Redis must not hold the answer).
        drop(permit);
        let answer = result?;
        if answer.resumed {
            coord.metrics().incr(names::SEARCH_RESUMED_TOTAL, &[(label::SERVICE, &service)], 1.0);
        }
        let resp = answer.response?;

        if self.cache_enabled && !resp.partial {
            // Shared as every match inline (a truncated answer's overflow file
            // belongs to this session); cache_put refuses what is over
            // cache.max_entry_kb.
            // The tail already holds that form; without one, read it back.
            let shared = match &answer.tail {
                Some(t) => serde_json::to_vec(&t.response).ok(),
                None => {
                    let core = self.core.clone();
                    let (whole, cap) = (resp.clone(), self.max_shared_matches);
                    let s = tokio::task::spawn_blocking(move || core.shareable(&whole, cap)).await.ok().flatten();
                    s.and_then(|s| serde_json::to_vec(&s).ok())
                }
            };
            if let Some(bytes) = shared {
                let stored = coord.cache_put(&key, &bytes).instrument(crate::telemetry::spans::cache_store()).await;
                // Listed under its question, so narrower asks find it (a
                // listing grows with the files: bounded, as every miss reads it).
                if let (true, Some((question, coverage))) = (stored, &listing) {
                    if coverage.files.len() <= QUESTION_LISTED_FILES_MAX {
                        if let Ok(member) = serde_json::to_string(coverage) {
                            coord.cache_index_add(question, &member, QUESTION_ANSWERS_KEPT).await;
                        }
                    }
                }
            }
            if let Some(bytes) = answer.tail.and_then(|t| serde_json::to_vec(&t).ok()) {
                coord.cache_put(&tail_key, &bytes).await;
            }
        }
        // Dropping the claim lets waiters in: they read the stored answer, or
        // (partial or oversized answers are not stored) search themselves.
        drop(claim);
        Ok(resp)
    }

    /// This plan's answer cut from a cached answer to the same question
    /// that covers it (see `search::cover`), presented to this caller and
    /// stored under this plan's own key; `None` when no listed answer
    /// covers it or those that do are gone from the cache.
    async fn from_covering(
        &self,
        coord: &Coordinator,
        plan: &SearchPlan,
        question: &str,
        mine: &Coverage,
    ) -> Option<Result<SearchResponse, SearchError>> {
        let mut covering: Vec<Coverage> = coord
            .cache_index(question)
            .await
            .iter()
            .filter_map(|m| serde_json::from_str::<Coverage>(m).ok())
            .filter(|c| c.contains(mine))
            .collect();
        covering.sort_by_key(Coverage::span);
        for c in covering.iter().take(3) {
            let Some(stored) = coord.cache_peek(&c.key).await else { continue };
            // A covering answer may be megabytes: read and cut off the runtime.
            let (core, plan) = (self.core.clone(), plan.clone());
            let cut = tokio::task::spawn_blocking(move || {
                let wide = serde_json::from_slice::<SearchResponse>(&stored).ok()?;
                let narrow = plan.narrow(wide);
                let bytes = serde_json::to_vec(&narrow).ok();
                Some((core.present(narrow, plan.request.max_results), bytes))
            })
            .await;
            let Ok(Some((presented, bytes))) = cut else { continue };
            if let Some(bytes) = bytes {
                coord.cache_put(&mine.key, &bytes).await;
            }
            return Some(presented);
        }
        None
    }

    pub async fn list_services(self: Arc<Self>) -> Result<Vec<ServiceInfo>, SearchError> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.list_services())
            .await
            .map_err(|e| SearchError::internal(format!("listing services failed: {e}")))
    }

    pub async fn read_overflow(self: Arc<Self>, reference: String, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.read_overflow(&reference, offset, limit))
            .await
            .map_err(|e| SearchError::internal(format!("reading the overflow failed: {e}")))?
    }

    pub async fn metrics(self: Arc<Self>) -> MetricsSnapshot {
        self.coordinator().await.snapshot().await
    }

    /// Flush metrics and release anything held; remove the session directory.
    pub async fn shutdown(&self) {
        if let Some(c) = self.coord.get() {
            c.shutdown().await;
        }
        self.core.close();
    }
}

fn ceil_to_second(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let floor = t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t);
    if floor == t {
        t
    } else {
        floor + TimeDelta::seconds(1)
    }
}
