//! The `tools/call` lifecycle: checking the call against the catalog,
//! forwarding progress, waiting for a call slot, running the tool under
//! cancellation, and answering (never after a client's cancellation, and
//! no progress after the answer).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::era::{finish_result, Era};
use super::jsonrpc::{error_msg, result_msg, truncate, RpcError, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST};
use super::schema::{first_violation, type_name};
use super::shared::{send, Calls, InFlight, Request, Shared};
use super::tool_result::shape_result;
use crate::call::{CallScope, Progress, ProgressSink, ToolCallError, ToolOutput};
use tokio::sync::TryAcquireError;
use tokio_util::sync::CancellationToken;

pub(super) struct PreparedCall {
    index: usize,
    arguments: Value,
}

/// The call checked against the catalog: a known tool, arguments that
/// match its input schema, an id no running call uses.
pub(super) fn prepare_call(shared: &Shared, req: &mut Request) -> Result<PreparedCall, RpcError> {
    let (id, params) = (&req.id, &mut req.params);
    let name = match params.get("name") {
        Some(Value::String(n)) => n,
        Some(other) => return Err(RpcError::params("$.params.name", format!("expected string, got {}", type_name(other)))),
        None => return Err(RpcError::params("$.params.name", "required (the tool to call)")),
    };
    let Some(entry) = shared.catalog.get(name) else {
        return Err(
            RpcError::new(INVALID_PARAMS, format!("unknown tool '{}'", truncate(name, 128))).with_data(json!({"path": "$.params.name"}))
        );
    };
    let arguments = match params.remove("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(a @ Value::Object(_)) => a,
        Some(other) => return Err(RpcError::params("$.arguments", format!("expected object, got {}", type_name(&other)))),
    };
    match &entry.input {
        Err(msg) => return Err(RpcError::new(INTERNAL_ERROR, msg.clone())),
        Ok(validator) => {
            if let Some(v) = first_violation(validator, &arguments, "$.arguments") {
                return Err(RpcError::new(INVALID_PARAMS, format!("{}: {}", v.path, v.message))
                    .with_data(json!({"path": v.path, "reason": v.message, "tool": entry.desc.name})));
            }
        }
    }
    if shared.inflight.lock().contains_key(&id.to_string()) {
        return Err(RpcError::new(INVALID_REQUEST, format!("Invalid Request: id {id} is already used by a call in progress")));
    }
    let index = shared.catalog.entries.iter().position(|e| std::ptr::eq(e, entry)).unwrap_or(0);
    Ok(PreparedCall { index, arguments })
}

/// Progress forwarding state for one call; `done` closes it before the
/// response is queued so no progress follows the response.
pub(super) struct ProgressState {
    last: Option<f64>,
    done: bool,
}

/// Registers the call (so a `notifications/cancelled` finds it) and hands
/// the read loop its future, which runs the tool and answers.
pub(super) fn start_call(shared: &Arc<Shared>, req: Request, prepared: PreparedCall, calls: &mut Calls) {
    let key = req.id.to_string();
    let token = shared.shutdown.child_token();
    let client_cancelled = Arc::new(AtomicBool::new(false));
    shared.inflight.lock().insert(key.clone(), InFlight { token: token.clone(), client_cancelled: client_cancelled.clone() });

    let progress_state = Arc::new(Mutex::new(ProgressState { last: None, done: false }));
    let progress = progress_sink(shared, &req.params, &progress_state);
    let scope = CallScope {
        request_id: key,
        session_id: shared.opts.session_id.clone(),
        user: shared.opts.user.clone(),
        protocol_version: req.era.version().to_string(),
        client: req.era.client(),
        traceparent: req.traceparent,
        progress,
        cancel: token.clone(),
        deadline: Instant::now() + shared.opts.call_timeout,
    };
    let call = Call { id: req.id, era: req.era, prepared, scope, token, client_cancelled, progress: progress_state };
    calls.started = Some(Box::pin(call.run(shared.clone())));
}

/// Where the tool's progress reports go: `notifications/progress` for the
/// request's `progressToken`, or nowhere when it sent none.
fn progress_sink(shared: &Shared, params: &Map<String, Value>, state: &Arc<Mutex<ProgressState>>) -> ProgressSink {
    let progress_token = params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.as_i64().is_some() || t.as_u64().is_some())
        .cloned();
    let Some(tok) = progress_token else {
        return ProgressSink::none();
    };
    let state = state.clone();
    let out = shared.out.clone();
    ProgressSink::new(move |p: Progress| {
        let mut s = state.lock();
        if s.done {
            return;
        }
        if !p.progress.is_finite() {
            tracing::debug!(progress = p.progress, "dropping a non-finite progress report");
            return;
        }
        // The spec wants progress to increase with every notification:
        // a report that does not is nudged just past the last value.
        let mut value = p.progress;
        if let Some(last) = s.last {
            if value <= last {
                value = last.next_up();
            }
        }
        s.last = Some(value);
        let mut params = json!({"progressToken": tok, "progress": value});
        if let Some(t) = p.total.filter(|t| t.is_finite()) {
            params["total"] = json!(t);
        }
        if let Some(m) = p.message {
            params["message"] = json!(m);
        }
        out.send(json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}).to_string());
    })
}

/// A started call: what it needs from running the tool to the answer.
struct Call {
    id: Value,
    era: Era,
    prepared: PreparedCall,
    scope: CallScope,
    token: CancellationToken,
    client_cancelled: Arc<AtomicBool>,
    progress: Arc<Mutex<ProgressState>>,
}

impl Call {
    /// Runs the tool under a call slot and answers it; returns whether the
    /// session's end cut it short (not the client's cancellation).
    async fn run(self, shared: Arc<Shared>) -> bool {
        let Call { id, era, prepared, scope, token, client_cancelled, progress } = self;
        let key = scope.request_id.clone();
        let entry = &shared.catalog.entries[prepared.index];
        let result = run_tool(&shared, &entry.desc.name, prepared.arguments, scope, &token).await;
        shared.inflight.lock().remove(&key);
        let mut progress = progress.lock();
        progress.done = true;
        let cancelled_by_client = client_cancelled.load(Ordering::SeqCst);
        // A call the session's end cut short (not one the client cancelled).
        let cut_by_shutdown = !cancelled_by_client && result.is_none();
        let msg = if cancelled_by_client {
            None
        } else {
            Some(match result {
                None => {
                    let e = RpcError::new(INTERNAL_ERROR, format!("tool '{}' was cancelled: the session is ending", entry.desc.name));
                    error_msg(&id, &e)
                }
                Some(r) => match shape_result(entry, r) {
                    Ok(result) => result_msg(&id, finish_result(&shared.opts, &era, result)),
                    Err(e) => error_msg(&id, &e),
                },
            })
        };
        if let Some(m) = msg {
            send(&shared, m);
        }
        drop(progress);
        cut_by_shutdown
    }
}

/// The tool's answer, after waiting for one of the session's call slots;
/// `None` when the call was cancelled first (waiting or running).
async fn run_tool(
    shared: &Shared,
    name: &str,
    arguments: Value,
    scope: CallScope,
    token: &CancellationToken,
) -> Option<Result<ToolOutput, ToolCallError>> {
    if token.is_cancelled() {
        return None;
    }
    // A free slot and a tool done on its first poll (a WASM tool that makes
    // no host call that waits) take no waiter on the token: it is only
    // registered (a lock and a node in its tree) when the call has to wait.
    let permit = match shared.permits.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(TryAcquireError::Closed) => return None,
        Err(TryAcquireError::NoPermits) => {
            let permits = shared.permits.clone();
            let p = tokio::select! {
                biased;
                _ = token.cancelled() => None,
                p = permits.acquire_owned() => p.ok(),
            }?;
            if token.is_cancelled() {
                return None;
            }
            p
        }
    };
    let mut fut = std::pin::pin!(shared.host.call(name, arguments, scope));
    let r = match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(r) => Some(r),
        Poll::Pending => tokio::select! {
            biased;
            _ = token.cancelled() => None,
            r = fut => Some(r),
        },
    };
    drop(permit);
    match r {
        // The tool saw the cancellation first (it came between the select's
        // look at the token and its poll of the tool, which runs on): its
        // error is the cut, not an answer of its own.
        Some(Err(_)) if token.is_cancelled() => None,
        r => r,
    }
}
