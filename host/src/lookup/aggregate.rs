//! An aggregate answered (`aggregate.summarize`): the same path as a search
//! (access, rate limit, plan, the shared cache with single flight, a
//! permit, the core on a blocking thread), folding lines into a
//! [`digest::Tally`] instead of keeping matches.
//!
//! With a baseline window the scan covers `[baseline start, window end)`
//! once; lines stamped before the window's start only count per pattern.

use std::sync::Arc;
use std::time::Instant;

use chrono::DateTime;
use logai_records::aggregate::{AggregateRequest, AggregateResponse};
use serde::Serialize;

use super::{keys, Lookup, Pending};
use crate::call::CallScope;
use crate::coord::Coordinator;
use crate::digest::fields::GroupBy;
use crate::digest::histogram::Grid;
use crate::digest::{Spec, Tally};
use crate::search::timestamp::format_ms;
use crate::search::{SearchError, SearchErrorKind, SearchPlan, SearchRequest};

/// `baseline_since` meaning the window of the same length just before.
pub const PREVIOUS: &str = "previous";

/// Most patterns, groups and facet values an answer lists.
pub const MAX_TOP: u32 = 200;

/// What an aggregate counts by besides its lines (part of its cache key).
#[derive(Serialize)]
struct CountedBy<'a> {
    step_ms: i64,
    origin_ms: i64,
    group_by: Option<&'a str>,
    top: u32,
    baseline_until: Option<i64>,
}

/// An aggregate on its way: its plans and how it counts.
struct Asked {
    top: u32,
    /// The window asked about (for the answer).
    main: SearchPlan,
    /// What is read: the window, or the baseline through the window.
    scan: Arc<SearchPlan>,
    spec: Arc<Spec>,
}

impl Lookup {
    /// Answer an aggregate for the call `scope`, cached and shared like a search.
    pub async fn summarize(&self, coord: &Coordinator, scope: &CallScope, req: AggregateRequest) -> Result<AggregateResponse, SearchError> {
        self.grant.check(&req.lines.service)?;
        coord.check_rate(&scope.user).await.map_err(|e| SearchError::new(SearchErrorKind::RateLimited, e.to_string()))?;
        let asked = self.asked(req).await?;
        let group = asked.spec.group.as_ref().map(|g| format!("{g:?}"));
        let counted_by = CountedBy {
            step_ms: asked.spec.grid.step_ms,
            origin_ms: asked.spec.grid.origin_ms,
            group_by: group.as_deref(),
            top: asked.top,
            baseline_until: asked.spec.baseline_until,
        };
        let key = keys::aggregate(&asked.scan, counted_by);
        let mut pending = Pending { lookup: self, coord, scope, plan: asked.scan.clone(), key, listing: None, claim: None };
        if self.policy.cache_enabled {
            let max_wait = scope.remaining().min(self.policy.search_timeout);
            match coord.cache_get_or_claim(&pending.key, max_wait).await {
                Ok(bytes) => {
                    if let Ok(mut hit) = serde_json::from_slice::<AggregateResponse>(&bytes) {
                        hit.mark_cache_hit();
                        return Ok(hit);
                    }
                }
                Err(claim) => pending.claim = Some(claim),
            }
        }
        let permit = pending.permit().await?;
        let ctl = pending.control();
        let (core, plan, spec, top) = (self.core.clone(), asked.scan.clone(), asked.spec.clone(), asked.top as usize);
        let started = Instant::now();
        let run = tokio::task::spawn_blocking(move || core.execute_fold(&plan, &ctl, &spec).map(|(r, f)| (r, f.map(|f| finish(f, top)))))
            .await
            .map_err(|e| SearchError::internal(format!("aggregating failed: {e}")))?;
        drop(permit);
        let (resp, tally) = run?;
        let mut out = tally.unwrap_or_default();
        out.files_searched = resp.files_searched;
        out.bytes_scanned = resp.bytes_scanned;
        out.partial = resp.partial;
        out.partial_reason = resp.partial_reason;
        out.window_start = asked.main.window.and_then(|w| w.start_text());
        out.window_end = asked.main.window.and_then(|w| w.end_text());
        out.duration_ms = started.elapsed().as_millis() as u64;
        if out.step_seconds == 0 {
            out.step_seconds = (asked.spec.grid.step_ms / 1000) as u32;
        }
        if self.policy.cache_enabled && !out.partial {
            if let Ok(bytes) = serde_json::to_vec(&out) {
                coord.cache_put(&pending.key, &bytes).await;
            }
        }
        drop(pending.claim.take());
        Ok(out)
    }

    /// The request checked and planned: the window's plan, the plan read
    /// (through the baseline when there is one) and the counting spec.
    async fn asked(&self, req: AggregateRequest) -> Result<Asked, SearchError> {
        if req.top == 0 || req.top > MAX_TOP {
            return Err(SearchError::invalid("top", format!("top = {} must be between 1 and {MAX_TOP}", req.top)));
        }
        let group = req.group_by.as_deref().map(GroupBy::parse).transpose().map_err(|m| SearchError::invalid("group_by", m))?;
        let lines = SearchRequest { context: 0, max_results: 1, ..req.lines.clone() };
        let capture = match group {
            Some(GroupBy::Capture) => Some(capture_regex(&lines)?),
            _ => None,
        };
        let main = self.plan(lines.clone()).await?;
        let window = main.window.filter(|w| w.start_ms != i64::MIN);
        let baseline_until = baseline(&req, window)?;
        let scan = match (&req.baseline_since, baseline_until, window) {
            (Some(since), Some(_), Some(w)) => {
                let since = if since == PREVIOUS { format_ms(w.start_ms - (w.end_ms - w.start_ms)) } else { since.clone() };
                let r =
                    SearchRequest { minutes_back: None, hours_back: None, date: None, since: Some(since), until: w.end_text(), ..lines };
                self.plan(r).await?
            }
            _ => main.clone(),
        };
        let grid = Grid::new(span(&main), req.step_seconds).map_err(|m| SearchError::invalid("step_seconds", m))?;
        let spec = Spec {
            files: scan.files.iter().map(|f| f.path.display().to_string()).collect(),
            baseline_until: baseline_until.map(|_| window.map_or(i64::MIN, |w| w.start_ms)),
            grid,
            group,
            capture,
            config: crate::patterns::Config::default(),
        };
        Ok(Asked { top: req.top, main, scan: Arc::new(scan), spec: Arc::new(spec) })
    }
}

/// The folded tally's answer part.
fn finish(f: Box<dyn crate::search::Fold>, top: usize) -> AggregateResponse {
    match f.into_any().downcast::<Tally>() {
        Ok(t) => t.finish(top),
        Err(_) => AggregateResponse::default(),
    }
}

/// The baseline's end, checked: both bounds given, before the window.
fn baseline(req: &AggregateRequest, window: Option<crate::search::Window>) -> Result<Option<i64>, SearchError> {
    let parse = |field: &str, v: &str| {
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.timestamp_millis())
            .map_err(|e| SearchError::invalid(field, format!("{field} = '{v}' is not an RFC 3339 time ({e})")))
    };
    match (&req.baseline_since, &req.baseline_until) {
        (None, None) => Ok(None),
        (Some(p), None) if p == PREVIOUS => match window {
            Some(w) if w.end_ms != i64::MAX => Ok(Some(w.start_ms)),
            _ => Err(SearchError::invalid(
                "baseline_since",
                "baseline 'previous' needs a closed window (date, since/until, minutes_back or hours_back)",
            )),
        },
        // A start alone: the baseline runs to the window's start.
        (Some(s), None) => {
            let s = parse("baseline_since", s)?;
            match window {
                Some(w) if s < w.start_ms => Ok(Some(w.start_ms)),
                Some(w) => Err(SearchError::invalid(
                    "baseline_since",
                    format!("the baseline must start before the window's start {}", format_ms(w.start_ms)),
                )),
                None => Err(SearchError::invalid(
                    "baseline_since",
                    "a baseline needs a window to compare with: set since/until, date, minutes_back or hours_back",
                )),
            }
        }
        (Some(s), Some(u)) => {
            let (s, u) = (parse("baseline_since", s)?, parse("baseline_until", u)?);
            let Some(w) = window else {
                return Err(SearchError::invalid(
                    "baseline_since",
                    "a baseline needs a window to compare with: set since/until, date, minutes_back or hours_back",
                ));
            };
            if s >= u || u > w.start_ms {
                return Err(SearchError::invalid(
                    "baseline_until",
                    format!(
                        "the baseline [{}, {}) must be non-empty and end at or before the window's start {}",
                        format_ms(s),
                        format_ms(u),
                        format_ms(w.start_ms)
                    ),
                ));
            }
            if u != w.start_ms {
                return Err(SearchError::invalid(
                    "baseline_until",
                    format!(
                        "the baseline must end where the window starts ({}): the lines between them would be read and counted nowhere",
                        format_ms(w.start_ms)
                    ),
                ));
            }
            Ok(Some(u))
        }
        (None, Some(_)) => Err(SearchError::invalid("baseline_since", "baseline_until needs baseline_since")),
    }
}

/// The span the buckets cover: the window, when it is closed (otherwise
/// the buckets follow the lines seen).
fn span(plan: &SearchPlan) -> Option<(i64, i64)> {
    let w = plan.window?;
    (w.start_ms != i64::MIN && w.end_ms != i64::MAX && w.end_ms > w.start_ms).then_some((w.start_ms, w.end_ms))
}

/// The pattern as a regex with its capture groups (`group_by = capture`).
fn capture_regex(req: &SearchRequest) -> Result<regex::bytes::Regex, SearchError> {
    if req.fixed_strings {
        return Err(SearchError::invalid(
            "group_by",
            "group_by=capture takes the pattern's first capture group: the pattern must be a regex (fixed_strings=false)",
        ));
    }
    let re = regex::bytes::RegexBuilder::new(&req.pattern)
        .case_insensitive(req.case_insensitive)
        .multi_line(true)
        .build()
        .map_err(|e| SearchError::invalid("pattern", format!("invalid pattern: {e}")))?;
    if re.captures_len() < 2 {
        return Err(SearchError::invalid(
            "group_by",
            format!("group_by=capture needs a capture group in the pattern, e.g. 'status=(\\d+)'; '{}' has none", req.pattern),
        ));
    }
    Ok(re)
}
