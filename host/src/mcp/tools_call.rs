//! The `tools/call` lifecycle: checking the call against the catalog,
//! forwarding progress, waiting for a call slot, running the tool under
//! cancellation, and answering (never after a client's cancellation, and
//! no progress after the answer).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::era::{finish_result, Era};
use super::jsonrpc::{error_msg, result_msg, truncate, RpcError, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST};
use super::schema::{first_violation, type_name};
use super::server::{send, Calls, InFlight, Shared};
use super::tool_result::shape_result;
use crate::call::{CallScope, Progress, ProgressSink};

pub(super) struct PreparedCall {
    index: usize,
    arguments: Value,
}

pub(super) fn prepare_call(shared: &Shared, id: &Value, params: &mut Map<String, Value>) -> Result<PreparedCall, RpcError> {
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

#[allow(clippy::too_many_arguments)]
pub(super) fn start_call(
    shared: &Arc<Shared>,
    id: Value,
    prepared: PreparedCall,
    era: Era,
    traceparent: Option<String>,
    params: &Map<String, Value>,
    calls: &mut Calls,
) {
    let key = id.to_string();
    let token = shared.shutdown.child_token();
    let client_cancelled = Arc::new(AtomicBool::new(false));
    shared.inflight.lock().insert(key.clone(), InFlight { token: token.clone(), client_cancelled: client_cancelled.clone() });

    let progress_state = Arc::new(Mutex::new(ProgressState { last: None, done: false }));
    let progress_token = params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.as_i64().is_some() || t.as_u64().is_some())
        .cloned();
    let progress = match progress_token {
        None => ProgressSink::none(),
        Some(tok) => {
            let state = progress_state.clone();
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
    };
    let entry_name = shared.catalog.entries[prepared.index].desc.name.clone();
    let scope = CallScope {
        request_id: key.clone(),
        session_id: shared.opts.session_id.clone(),
        user: shared.opts.user.clone(),
        protocol_version: era.version().to_string(),
        client: era.client(),
        traceparent: traceparent.clone(),
        progress,
        cancel: token.clone(),
        deadline: Instant::now() + shared.opts.call_timeout,
    };
    let shared = shared.clone();
    calls.started = Some(Box::pin(async move {
        let permits = shared.permits.clone();
        let permit = tokio::select! {
            biased;
            _ = token.cancelled() => None,
            p = permits.acquire_owned() => p.ok(),
        };
        let result = match permit {
            None => None,
            Some(permit) => {
                let fut = shared.host.call(&entry_name, prepared.arguments, scope);
                let r = tokio::select! {
                    biased;
                    _ = token.cancelled() => None,
                    r = fut => Some(r),
                };
                drop(permit);
                r
            }
        };
        shared.inflight.lock().remove(&key);
        let entry = &shared.catalog.entries[prepared.index];
        let mut progress = progress_state.lock();
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
    }));
}
