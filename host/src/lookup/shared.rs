//! Answers shared through the cache: read (under the exact key, or cut
//! from a cached answer to the same question that covers this one) and
//! written (stored under its key, listed under its question).

use std::time::Instant;

use tracing::Instrument;

use super::{keys, Pending};
use crate::coord::names;
use crate::search::cover::Coverage;
use crate::search::tail::Tail;
use crate::search::{SearchError, SearchResponse};

/// Answers listed per question for narrower asks to be cut from (newest kept).
const QUESTION_ANSWERS_KEPT: usize = 32;
/// Answers over more files than this are not listed (each file is a digest
/// in the listing, read on every miss of the question).
const QUESTION_LISTED_FILES_MAX: usize = 1024;

/// The question a plan answers and what its answer covers.
pub(super) struct Listing {
    question: String,
    coverage: Coverage,
}

impl Pending<'_> {
    /// This search's answer from the cache, or `None` (a miss: the key is
    /// claimed and the listing made, for the search that follows).
    pub(super) async fn cached(&mut self) -> Option<Result<SearchResponse, SearchError>> {
        match self.get_or_claim().await {
            Ok(bytes) => {
                if let Ok(resp) = serde_json::from_slice::<SearchResponse>(&bytes) {
                    self.coord.metrics().incr(names::CACHE_HITS_TOTAL, &[(names::label::VIA, names::CacheVia::Key.as_str())], 1.0);
                    return Some(self.exact_hit(resp).await);
                }
                // Not an answer (written by another version?): search.
                self.coord.metrics().incr(names::CACHE_MISSES_TOTAL, &[], 1.0);
                self.listing = Some(self.listing());
                None
            }
            Err(claim) => {
                // A cached answer to the same question over a wider
                // window or with more context holds this one.
                let listing = self.listing();
                if let Some(resp) = self.narrowed(&listing).await {
                    self.coord.metrics().incr(names::CACHE_HITS_TOTAL, &[(names::label::VIA, names::CacheVia::Narrowed.as_str())], 1.0);
                    // Dropping the claim lets the waiters read what was just stored.
                    drop(claim);
                    return Some(resp);
                }
                self.coord.metrics().incr(names::CACHE_MISSES_TOTAL, &[], 1.0);
                self.listing = Some(listing);
                self.claim = Some(claim);
                None
            }
        }
    }

    /// The answer under this key, or (waiting, bounded, while another
    /// session searches for it) the claim to search for it.
    async fn get_or_claim(&self) -> Result<Vec<u8>, crate::coord::CacheClaim> {
        let t = Instant::now();
        let max_wait = self.scope.remaining().min(self.lookup.policy.search_timeout);
        let span = crate::telemetry::spans::cache_lookup();
        let looked = self.coord.cache_get_or_claim(&self.key, max_wait).instrument(span.clone()).await;
        span.record("hit", looked.is_ok());
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        self.coord.metrics().observe(names::CACHE_OP_DURATION_MS, &[(names::label::OP, names::CacheOp::Get.as_str())], ms);
        looked
    }

    /// A stored answer to exactly this plan, presented to this caller.
    async fn exact_hit(&self, mut resp: SearchResponse) -> Result<SearchResponse, SearchError> {
        // What this call did (nothing scanned), not what the search that
        // stored it did: as a narrowed hit.
        resp.mark_cache_hit();
        // The key leaves out window bounds outside the files' time ranges:
        // report this request's window.
        resp.window_start = self.plan.window.and_then(|w| w.start_text());
        resp.window_end = self.plan.window.and_then(|w| w.end_text());
        // Every match is stored: cut to this caller's max_results, the rest
        // to an overflow of this session.
        let (core, max_results) = (self.lookup.core.clone(), self.plan.request.max_results);
        tokio::task::spawn_blocking(move || core.present(resp, max_results))
            .await
            .map_err(|e| SearchError::internal(format!("presenting a cached answer failed: {e}")))?
    }

    fn listing(&self) -> Listing {
        Listing { question: keys::question(&self.plan), coverage: self.plan.coverage(&self.key) }
    }

    /// This plan's answer cut from a cached answer to the same question
    /// that covers it (see `search::cover`), presented to this caller and
    /// stored under this plan's own key; `None` when no listed answer
    /// covers it or those that do are gone from the cache.
    async fn narrowed(&self, listing: &Listing) -> Option<Result<SearchResponse, SearchError>> {
        let mine = &listing.coverage;
        let mut covering: Vec<Coverage> = self
            .coord
            .cache_index(&listing.question)
            .await
            .iter()
            .filter_map(|m| serde_json::from_str::<Coverage>(m).ok())
            .filter(|c| c.contains(mine))
            .collect();
        covering.sort_by_key(Coverage::span);
        for c in covering.iter().take(3) {
            let Some(stored) = self.coord.cache_peek(&c.key).await else { continue };
            // A covering answer may be megabytes: read and cut off the runtime.
            let (core, plan) = (self.lookup.core.clone(), self.plan.clone());
            let cut = tokio::task::spawn_blocking(move || {
                let wide = serde_json::from_slice::<SearchResponse>(&stored).ok()?;
                let narrow = plan.narrow(wide);
                let bytes = serde_json::to_vec(&narrow).ok();
                Some((core.present(narrow, plan.request.max_results), bytes))
            })
            .await;
            let Ok(Some((presented, bytes))) = cut else { continue };
            if let Some(bytes) = bytes {
                self.coord.cache_put(&mine.key, &bytes).await;
            }
            return Some(presented);
        }
        None
    }

    /// Store a complete answer for other sessions (and this one's next
    /// ask), listed under its question, and the tail it left.
    pub(super) async fn store(&self, resp: &SearchResponse, tail: Option<Tail>, tail_key: &str) {
        if let Some(bytes) = self.shareable(resp, tail.as_ref()).await {
            let stored = self.coord.cache_put(&self.key, &bytes).instrument(crate::telemetry::spans::cache_store()).await;
            if stored {
                self.list().await;
            }
        }
        if let Some(bytes) = tail.and_then(|t| serde_json::to_vec(&t).ok()) {
            self.coord.cache_put(tail_key, &bytes).await;
        }
    }

    /// The answer as shared: every match inline (a truncated answer's
    /// overflow file belongs to this session); cache_put refuses what is
    /// over cache.max_entry_kb. The tail already holds that form; without
    /// one, read it back.
    async fn shareable(&self, resp: &SearchResponse, tail: Option<&Tail>) -> Option<Vec<u8>> {
        match tail {
            Some(t) => serde_json::to_vec(&t.response).ok(),
            None => {
                let core = self.lookup.core.clone();
                let (whole, cap) = (resp.clone(), self.lookup.policy.max_shared_matches);
                let s = tokio::task::spawn_blocking(move || core.shareable(&whole, cap)).await.ok().flatten();
                s.and_then(|s| serde_json::to_vec(&s).ok())
            }
        }
    }

    /// List the stored answer under its question, so narrower asks find it
    /// (a listing grows with the files: bounded, as every miss reads it).
    async fn list(&self) {
        let Some(Listing { question, coverage }) = &self.listing else { return };
        if coverage.files.len() <= QUESTION_LISTED_FILES_MAX {
            if let Ok(member) = serde_json::to_string(coverage) {
                self.coord.cache_index_add(question, &member, QUESTION_ANSWERS_KEPT).await;
            }
        }
    }
}
