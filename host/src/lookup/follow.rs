//! Following a log (`search.follow`): the first call an ordinary search
//! (through the cache, when every file ends at a line end) that also
//! returns a cursor; later calls read only what was appended since the
//! cursor (`search::follow`, never cached: each answer is new bytes),
//! polling every [`POLL`] for up to `wait_ms` until a line matches.
//!
//! While it waits, a call holds no search permit: it takes one for each
//! scan of appended bytes only. The wait ends before the call's deadline
//! (leaving [`ANSWER_MARGIN`] to answer) or when the call is cancelled;
//! then the answer is empty and its cursor is where the files stand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ceil_to_second, keys, Lookup, Pending};
use crate::call::CallScope;
use crate::coord::Coordinator;
use crate::search::{Cursor, Executed, FollowPlan, FollowResponse, SearchError, SearchErrorKind, SearchRequest, SearchResponse};

/// How often a waiting call looks at the files again.
const POLL: Duration = Duration::from_millis(200);
/// What a waiting call leaves of its time limit to answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(1000);

impl Lookup {
    /// Answer `req` after `cursor` (none: from the start, leaving a cursor),
    /// waiting up to `wait_ms` for a match when given a cursor.
    pub async fn follow(
        &self,
        coord: &Coordinator,
        scope: &CallScope,
        req: SearchRequest,
        cursor: Option<String>,
        wait_ms: u32,
    ) -> Result<FollowResponse, SearchError> {
        let req = self.policy.bounded(req)?;
        self.grant.check(&req.service)?;
        let cursor = cursor.as_deref().map(Cursor::decode).transpose()?;
        coord.check_rate(&scope.user).await.map_err(|e| SearchError::new(SearchErrorKind::RateLimited, e.to_string()))?;
        match cursor {
            None => self.follow_first(coord, scope, req).await,
            Some(c) => self.follow_on(coord, scope, req, c, Duration::from_millis(wait_ms.into())).await,
        }
    }

    async fn plan_follow(&self, req: &SearchRequest, cursor: Option<Cursor>) -> Result<FollowPlan, SearchError> {
        let (core, req) = (self.core.clone(), req.clone());
        let now = ceil_to_second(chrono::Utc::now());
        tokio::task::spawn_blocking(move || core.plan_follow(&req, now, cursor.as_ref()))
            .await
            .map_err(|e| SearchError::internal(format!("follow planning failed: {e}")))?
    }

    /// The ordinary search (cached when it can be) and a cursor at the end
    /// of what it read.
    async fn follow_first(&self, coord: &Coordinator, scope: &CallScope, req: SearchRequest) -> Result<FollowResponse, SearchError> {
        let fp = self.plan_follow(&req, None).await?;
        let all = vec![true; fp.plan.files.len()];
        if fp.ordinary {
            let plan = Arc::new(fp.plan.clone());
            let key = keys::answer(&plan);
            let response = Pending { lookup: self, coord, scope, plan, key, listing: None, claim: None }.answer().await?;
            return Ok(FollowResponse { response, cursor: fp.cursor(&all, &[]).encode() });
        }
        // A file ends mid-line: read up to its last line end, uncached.
        let ex = self.scan_once(coord, scope, &fp).await?;
        Ok(FollowResponse { cursor: fp.cursor(&all, &ex.lines_at_end).encode(), response: ex.response })
    }

    /// What was appended after `cursor`, looking again every [`POLL`]
    /// while nothing matched, until `wait` passes.
    async fn follow_on(
        &self,
        coord: &Coordinator,
        scope: &CallScope,
        req: SearchRequest,
        mut cursor: Cursor,
        wait: Duration,
    ) -> Result<FollowResponse, SearchError> {
        let until = (Instant::now() + wait).min(scope.deadline.checked_sub(ANSWER_MARGIN).unwrap_or_else(Instant::now));
        let (mut scanned, mut core_ms) = (0u64, 0u64);
        loop {
            let fp = self.plan_follow(&req, Some(cursor)).await?;
            let (mut resp, next) = if fp.has_work() {
                let ex = self.scan_once(coord, scope, &fp).await?;
                let next = fp.cursor(&ex.finished, &ex.lines_at_end);
                (ex.response, next)
            } else {
                (nothing(&fp), fp.cursor(&[], &[]))
            };
            cursor = next;
            (scanned, core_ms) = (scanned + resp.bytes_scanned, core_ms + resp.duration_ms);
            (resp.bytes_scanned, resp.duration_ms) = (scanned, core_ms);
            if !fp.notes.is_empty() {
                let mut reasons = fp.notes.clone();
                reasons.extend(resp.partial_reason.take());
                resp.partial = true;
                resp.partial_reason = Some(reasons.join("; "));
            }
            let over = Instant::now() + POLL >= until || scope.cancel.is_cancelled();
            if resp.total_matches > 0 || resp.partial || over {
                return Ok(FollowResponse { response: resp, cursor: cursor.encode() });
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = scope.cancel.cancelled() => {}
            }
        }
    }

    /// One scan of a follow plan, under a permit.
    async fn scan_once(&self, coord: &Coordinator, scope: &CallScope, fp: &FollowPlan) -> Result<Executed, SearchError> {
        let plan = Arc::new(fp.plan.clone());
        let pending = Pending { lookup: self, coord, scope, plan: plan.clone(), key: String::new(), listing: None, claim: None };
        let permit = pending.permit().await?;
        let ctl = pending.control();
        let core = self.core.clone();
        let span = crate::telemetry::spans::scan(&plan.service);
        let ex = tokio::task::spawn_blocking(move || span.in_scope(|| core.execute_tracked(&plan, &ctl)))
            .await
            .map_err(|e| SearchError::internal(format!("search failed: {e}")));
        drop(permit);
        ex?
    }
}

/// The answer of a look that found nothing to read.
fn nothing(fp: &FollowPlan) -> SearchResponse {
    SearchResponse {
        window_start: fp.plan.window.and_then(|w| w.start_text()),
        window_end: fp.plan.window.and_then(|w| w.end_text()),
        ..SearchResponse::default()
    }
}
