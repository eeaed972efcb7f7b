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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::search::{SearchCore, SessionDir};

    struct Fx {
        dir: tempfile::TempDir,
        lookup: Lookup,
        coord: Coordinator,
    }

    async fn fixture() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("logs/app.log"), "hit 1\n").unwrap();
        let text = format!(
            "[server]\nsession_root = \"{}\"\n[limits]\nslot_dir = \"{}\"\n[[service]]\nname = \"app\"\npaths = [\"logs/app.log*\"]\nformat = \"plain\"\n",
            dir.path().join("sessions").display(),
            dir.path().join("slots").display()
        );
        let config = crate::config::parse(&text, "test.toml", dir.path()).unwrap();
        let session = SessionDir::create(dir.path().join("sessions/follow")).unwrap();
        let core = Arc::new(SearchCore::new(&config, session).unwrap());
        let coord = Coordinator::start(&config.redis, &config.limits, &config.cache).await;
        Fx { lookup: Lookup::for_person(&config, core, "tester"), coord, dir }
    }

    fn req() -> SearchRequest {
        SearchRequest::new("app", "^hit")
    }

    /// A waiting call holds no permit, answers once a matching line is
    /// written, and answers (empty, with a cursor) when cancelled or near
    /// its deadline. The bounds on awaiting are failure bounds only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_holds_no_permit_and_ends_on_a_match_a_cancel_or_the_deadline() {
        let fx = Arc::new(fixture().await);
        let scope = CallScope::detached("t", Duration::from_secs(60));
        let first = fx.lookup.follow(&fx.coord, &scope, req(), None, 0).await.unwrap();
        assert_eq!(first.response.total_matches, 1);

        let (fx2, cursor) = (fx.clone(), first.cursor.clone());
        let waiting = tokio::spawn(async move {
            let scope = CallScope::detached("t", Duration::from_secs(60));
            fx2.lookup.follow(&fx2.coord, &scope, req(), Some(cursor), 20_000).await
        });
        // While it waits with nothing to read, no permit is held.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(fx.coord.permits_in_use("app"), Some(0));
        }
        assert!(!waiting.is_finished());
        let mut f = std::fs::OpenOptions::new().append(true).open(fx.dir.path().join("logs/app.log")).unwrap();
        f.write_all(b"miss\nhit 2\n").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), waiting).await.unwrap().unwrap().unwrap();
        let lines: Vec<(u64, &str)> = got.response.matches.iter().map(|m| (m.line_number, m.text.as_str())).collect();
        assert_eq!(lines, [(3, "hit 2")]);

        // Cancelled while waiting: an empty answer and a cursor.
        let scope = CallScope::detached("t", Duration::from_secs(60));
        let cancel = scope.cancel.clone();
        let (fx2, cursor) = (fx.clone(), got.cursor.clone());
        let waiting = tokio::spawn(async move { fx2.lookup.follow(&fx2.coord, &scope, req(), Some(cursor), 20_000).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
        let got = tokio::time::timeout(Duration::from_secs(30), waiting).await.unwrap().unwrap().unwrap();
        assert_eq!(got.response.total_matches, 0);
        assert!(Cursor::decode(&got.cursor).is_ok());

        // A deadline 2 s away: the wait ends before it (failure bound 30 s).
        let scope = CallScope::detached("t", Duration::from_secs(2));
        let got = tokio::time::timeout(Duration::from_secs(30), fx.lookup.follow(&fx.coord, &scope, req(), Some(got.cursor), 600_000))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.response.total_matches, 0);
    }
}
