//! Helpers that open the telemetry spans with the names and fields
//! exporters understand (see `docs/telemetry.md`). Using them is optional —
//! any `info_span!(target: SPAN_TARGET, ...)` works — but they keep names
//! and fields consistent. Every span is `INFO` level; fields not known at
//! open time are declared `Empty` and filled with `Span::record`.
//!
//! ```ignore
//! let span = spans::tool_call(&name, &plugin, &scope);
//! let out = host.call(name, args, scope).instrument(span.clone()).await;
//! spans::record_tool_outcome(&span, &out);
//! ```

use tracing::field::Empty;
use tracing::Span;

use super::SPAN_TARGET;
use crate::call::{CallScope, ToolCallError, ToolOutput};
use crate::coord::names::{ErrorKind, ToolOutcome};
use crate::search::{SearchError, SearchErrorKind, SearchRequest, SearchResponse};

/// `mcp.request`: one JSON-RPC request (optional root; `tool.call` is a root too when there is none).
pub fn mcp_request(method: &str, request_id: &str, session: &str, user: &str, traceparent: Option<&str>) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "mcp.request",
        method = %method, request_id = %request_id, session = %session, user = %user,
        traceparent = traceparent.unwrap_or(""), outcome = Empty, error = Empty)
}

/// `tool.call`: one `tools/call` (becomes the Sentry transaction and the
/// Datadog span named after the tool).
pub fn tool_call(tool: &str, plugin: &str, scope: &CallScope) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "tool.call",
        tool = %tool, plugin = %plugin, session = %scope.session_id, user = %scope.user,
        client = scope.client.as_deref().unwrap_or(""), request_id = %scope.request_id,
        traceparent = scope.traceparent.as_deref().unwrap_or(""),
        outcome = Empty, error = Empty, tool_error = Empty)
}

/// Record how a tool call ended: `outcome` = `ok`, `tool_error` (isError
/// result; its text in `tool_error`) or the error kind; protocol errors
/// also set `error` (which makes an error event).
pub fn record_tool_outcome(span: &Span, result: &Result<ToolOutput, ToolCallError>) {
    span.record("outcome", tool_outcome(result).as_str());
    match result {
        Ok(out) if out.is_error && !out.failed_in_host => {
            // A tool-level error is for the model to read, not an ops error:
            // no error event (a failing search inside reports its own).
            let text: String = out.content.iter().filter_map(|c| c.get("text").and_then(|t| t.as_str())).collect::<Vec<_>>().join(" ");
            span.record("tool_error", text.chars().take(500).collect::<String>().as_str());
        }
        Ok(out) if out.failed_in_host => {
            // The host failed the call: an ops error (an error event).
            let text: String = out.content.iter().filter_map(|c| c.get("text").and_then(|t| t.as_str())).collect::<Vec<_>>().join(" ");
            span.record("error", text.chars().take(500).collect::<String>().as_str());
        }
        Ok(_) => {}
        Err(e) => {
            span.record("error", e.to_string().as_str());
        }
    }
}

/// How a tool call ended (`outcome` of the span and of `logai_tool_calls_total`).
pub fn tool_outcome(result: &Result<ToolOutput, ToolCallError>) -> ToolOutcome {
    match result {
        Ok(out) if out.failed_in_host => ToolOutcome::Internal,
        Ok(out) if !out.is_error => ToolOutcome::Ok,
        Ok(_) => ToolOutcome::ToolError,
        Err(ToolCallError::UnknownTool(_)) => ToolOutcome::UnknownTool,
        Err(ToolCallError::InvalidArguments { .. }) => ToolOutcome::InvalidArguments,
        Err(ToolCallError::Internal(_)) => ToolOutcome::Internal,
    }
}

/// `plugin.call`: the component running one call (a child of `tool.call`,
/// the parent of the searches it makes: its exclusive time is the guest's).
pub fn plugin_call(plugin: &str, tool: &str) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "plugin.call", plugin = %plugin, tool = %tool, outcome = Empty, error = Empty)
}

/// Record how the component's run ended (`outcome` only: the `tool.call`
/// around it makes the one error event of a failed call).
pub fn record_plugin_outcome(span: &Span, result: &Result<ToolOutput, ToolCallError>) {
    span.record("outcome", tool_outcome(result).as_str());
}

/// The time window of a request, as one short string (`15m`, `2h`, `2024-05-01`, `since..until`).
pub fn window_of(req: &SearchRequest) -> String {
    if let Some(m) = req.minutes_back {
        format!("{m}m")
    } else if let Some(h) = req.hours_back {
        format!("{h}h")
    } else if let Some(d) = &req.date {
        d.clone()
    } else if req.since.is_some() || req.until.is_some() {
        format!("{}..{}", req.since.as_deref().unwrap_or(""), req.until.as_deref().unwrap_or(""))
    } else {
        "all".into()
    }
}

/// `search`: one search through the host import (rate limit, cache, permit, scan).
pub fn search(req: &SearchRequest) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "search",
        service = %req.service, pattern = %truncate(&req.pattern, 200), window = %window_of(req),
        cached = Empty, files_searched = Empty, files_matched = Empty, result_count = Empty,
        bytes_scanned = Empty, partial = Empty, outcome = Empty, error = Empty)
}

pub fn record_search(span: &Span, result: &Result<SearchResponse, SearchError>) {
    match result {
        Ok(r) => {
            span.record("outcome", "ok");
            span.record("cached", r.cached);
            span.record("files_searched", r.files_searched as u64);
            span.record("files_matched", r.files_matched as u64);
            span.record("result_count", r.total_matches);
            span.record("bytes_scanned", r.bytes_scanned);
            span.record("partial", r.partial);
        }
        Err(e) => {
            span.record("outcome", error_kind(e.kind).as_str());
            span.record("error", e.message.as_str());
        }
    }
}

/// The error kind of a search error (`kind` of `logai_errors_total`, `outcome` of the span).
pub fn error_kind(kind: SearchErrorKind) -> ErrorKind {
    match kind {
        SearchErrorKind::InvalidRequest => ErrorKind::InvalidRequest,
        SearchErrorKind::Forbidden => ErrorKind::Forbidden,
        SearchErrorKind::RateLimited => ErrorKind::RateLimited,
        SearchErrorKind::Busy => ErrorKind::Busy,
        SearchErrorKind::NotFound => ErrorKind::NotFound,
        SearchErrorKind::Cancelled => ErrorKind::Cancelled,
        SearchErrorKind::Internal => ErrorKind::Internal,
    }
}

/// `cache.lookup`: record `hit` (bool) when known.
pub fn cache_lookup() -> Span {
    tracing::info_span!(target: SPAN_TARGET, "cache.lookup", hit = Empty, outcome = Empty, error = Empty)
}

/// `cache.store`: record `bytes` when known.
pub fn cache_store() -> Span {
    tracing::info_span!(target: SPAN_TARGET, "cache.store", bytes = Empty, outcome = Empty, error = Empty)
}

/// `permit.acquire`: record `permits_in_use`, `permits_limit` (after the
/// grant), `waited_ms`; `outcome` = `busy`/`cancelled` on failure.
pub fn permit(service: &str) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "permit.acquire", service = %service, scope = "global",
        permits_in_use = Empty, permits_limit = Empty, waited_ms = Empty, outcome = Empty, error = Empty)
}

/// `scan`: the search core reading files.
pub fn scan(service: &str) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "scan", service = %service, files = Empty, bytes = Empty, outcome = Empty)
}

/// `redis`: one Redis round trip (`op` = `acquire`, `cache_get`, ...); `outcome` on failure.
pub fn redis(op: &str) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "redis", op = %op, outcome = Empty, error = Empty)
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}
