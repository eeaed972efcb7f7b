//! A fresh answer when the cache had none: a permit, then the search core
//! on a blocking thread, resumed from the request's tail when the log only
//! grew (scanning just the appended bytes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::{keys, Pending};
use crate::coord::{names, PermitError, PermitGuard};
use crate::search::tail::{Answer, Tail};
use crate::search::{SearchControl, SearchError, SearchErrorKind, SearchResponse};

/// How long before a call's deadline a queued search gives up waiting
/// for a permit, so the plugin still has time to return the "busy" answer.
const BUSY_ANSWER_MARGIN: Duration = Duration::from_millis(500);

impl Pending<'_> {
    /// Search under a permit; store a complete answer (and its tail).
    pub(super) async fn search(self) -> Result<SearchResponse, SearchError> {
        let permit = self.permit().await?;
        let ctl = self.control();
        // A growing log asked about again: resume from the tail the last
        // search of this request left, scanning only the appended bytes.
        let tail_key = keys::tail(&self.plan);
        let prev = self.previous_tail(&tail_key).await;
        let result = self.scan(prev, ctl).await;
        // The slots go back now; the Redis lease in the background (a slow
        // Redis must not hold the answer).
        drop(permit);
        let answer = result?;
        if answer.resumed {
            self.coord.metrics().incr(names::SEARCH_RESUMED_TOTAL, &[(names::label::SERVICE, &self.plan.service)], 1.0);
        }
        let resp = answer.response?;
        if self.lookup.policy.cache_enabled && !resp.partial {
            self.store(&resp, answer.tail, &tail_key).await;
        }
        // Dropping the claim lets waiters in: they read the stored answer, or
        // (partial or oversized answers are not stored) search themselves.
        drop(self.claim);
        Ok(resp)
    }

    /// A search permit, reporting the queue to the caller while it waits.
    pub(super) async fn permit(&self) -> Result<PermitGuard, SearchError> {
        let progress = self.scope.progress.clone();
        let permit_span = crate::telemetry::spans::permit(&self.plan.service);
        let wait_started = Instant::now();
        let last_status = Arc::new(parking_lot::Mutex::new(None));
        let seen = last_status.clone();
        // Give up in time to answer "busy" (naming the limit) before the
        // call's own deadline stops it with a time-limit error.
        let by = self.scope.deadline.checked_sub(BUSY_ANSWER_MARGIN);
        let permit = self
            .coord
            .acquire_by(&self.plan.service, &self.scope.cancel, by, move |status| {
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
        permit_span.record("permits_limit", self.lookup.policy.global_limit as f64);
        // Every grant: the slots held on this host (this one included), or
        // without slots the last queue status seen (at least this permit).
        let queued = (*last_status.lock()).map(|st| (st.running_global + 1).min(st.limit_global));
        let in_use = self.coord.permits_in_use(&self.plan.service).or(queued).unwrap_or(1);
        permit_span.record("permits_in_use", in_use as f64);
        Ok(permit)
    }

    /// The call's cancellation, its deadline (at most the search timeout)
    /// and, when the caller listens, progress in bytes and files.
    pub(super) fn control(&self) -> SearchControl {
        let deadline = self.scope.deadline.min(Instant::now() + self.lookup.policy.search_timeout);
        let mut ctl = SearchControl::new(self.scope.cancel.clone(), deadline);
        if self.scope.progress.is_active() {
            let progress = self.scope.progress.clone();
            ctl = ctl.with_progress(move |bytes, total, files, files_total| {
                progress.report(
                    bytes as f64,
                    Some(total as f64),
                    Some(format!("searched {files}/{files_total} files, {} of {} MB", bytes >> 20, total >> 20)),
                );
            });
        }
        ctl
    }

    /// The tail the last search of this request left (none without a cache).
    async fn previous_tail(&self, tail_key: &str) -> Option<Tail> {
        match self.lookup.policy.cache_enabled {
            true => self.coord.cache_peek(tail_key).await.and_then(|b| serde_json::from_slice::<Tail>(&b).ok()),
            false => None,
        }
    }

    /// The search core on a blocking thread.
    async fn scan(&self, prev: Option<Tail>, ctl: SearchControl) -> Result<Answer, SearchError> {
        let (core, plan) = (self.lookup.core.clone(), self.plan.clone());
        let scan = crate::telemetry::spans::scan(&plan.service);
        let cap = self.lookup.policy.max_shared_matches;
        tokio::task::spawn_blocking(move || scan.in_scope(|| core.execute_resumable(&plan, prev.as_ref(), &ctl, cap)))
            .await
            .map_err(|e| SearchError::internal(format!("search failed: {e}")))
    }
}
