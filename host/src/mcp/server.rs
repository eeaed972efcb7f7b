//! The dispatcher: reads messages, answers the cheap ones in order on the
//! read loop, runs each `tools/call` on the read loop until it first waits
//! and then as a task of its own, and writes every outgoing line in order
//! from whichever task made it (`writer::Outbox`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::era::{discover, initialize, legacy_era, parse_envelope, Era, Session};
use super::jsonrpc::{
    classify, error_msg, oversized_line_id, ping_answer, plain_ping, result_msg, truncate, Incoming, RpcError, INVALID_REQUEST,
    METHOD_NOT_FOUND, PARSE_ERROR,
};
use super::reader::{Line, LineReader};
use super::schema::Catalog;
use super::shared::{send, Calls, Request, Shared};
use super::tools_call::{prepare_call, start_call};
use super::tools_list::list_tools;
use super::writer::{Outbox, OutputProbe, OutputWatch};
use super::ServerOptions;
use crate::call::ToolHost;

pub(crate) async fn run<R, W>(
    reader: R,
    writer: W,
    host: Arc<dyn ToolHost>,
    opts: ServerOptions,
    output_probe: Option<OutputProbe>,
) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let close_writer = CancellationToken::new();
    let output = OutputWatch::new(output_probe);
    let out = Outbox::new(writer, output.clone());
    let writer_task = tokio::spawn(out.clone().run(close_writer.clone()));

    let catalog = Catalog::build(host.tools());
    tracing::debug!(tools = catalog.entries.len(), "mcp server ready");
    let shared = Arc::new(Shared {
        host,
        permits: Arc::new(Semaphore::new(opts.max_concurrent_calls.max(1))),
        opts,
        catalog,
        out,
        inflight: Mutex::new(HashMap::new()),
        shutdown: CancellationToken::new(),
    });
    let mut session = Session::default();
    let mut lines = LineReader::new(reader, shared.opts.max_message_bytes);
    let mut calls = Calls::default();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("reading stdin failed, ending the session: {e}");
                break;
            }
        };
        while calls.tasks.try_join_next().is_some() {}
        crate::call::deferring(|| handle_line(&shared, &mut session, line, &mut calls));
        if let Some(mut call) = calls.started.take() {
            // Run the call here until it first waits (a WASM tool is usually
            // done by then): its answer is written from this thread, with no
            // hand-off. One that waits goes on as a task of its own, and the
            // next line is read.
            let waits = std::future::poll_fn(|cx| Poll::Ready(crate::call::deferring(|| call.as_mut().poll(cx)).is_pending())).await;
            if waits {
                calls.tasks.spawn(call);
            }
        }
    }

    finish_calls(&shared, &mut calls.tasks, &output).await;
    close_writer.cancel();
    drop(shared);
    let _ = writer_task.await;
    Ok(())
}

/// How long cancelled calls get to wind down before their tasks are
/// aborted. They end at once (the server stops waiting for the tool); this
/// only bounds the exit should one not.
const CANCELLED_CALLS_BOUND: Duration = Duration::from_secs(1);

/// End of input. While the client still reads our output, calls already
/// running get `shutdown_grace` to finish and their answers are written;
/// what still runs after it is cancelled (and answered `-32603`). When the
/// output is gone as well, there is no one to answer: everything is
/// cancelled at once.
async fn finish_calls(shared: &Shared, tasks: &mut JoinSet<bool>, output: &OutputWatch) {
    while tasks.try_join_next().is_some() {}
    let running = tasks.len();
    if running == 0 {
        tracing::debug!("stdin closed; no call running");
        return;
    }
    if output.is_gone() {
        let cut = cancel_calls(shared, tasks).await;
        tracing::warn!("stdin and stdout closed; cancelled {cut} of {running} running call(s) at once");
        return;
    }
    let grace = shared.opts.shutdown_grace;
    let grace_ms = grace.as_millis() as u64;
    tracing::info!("stdin closed; waiting up to {grace_ms} ms for {running} running call(s)");
    let waited = Instant::now();
    let all_done = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        _ = all_done => {
            tracing::info!(waited_ms = waited.elapsed().as_millis() as u64, "all calls answered");
        }
        _ = tokio::time::sleep(grace) => {
            let cut = cancel_calls(shared, tasks).await;
            tracing::warn!("cancelled {cut} call(s) still running after the grace of {grace_ms} ms; they were answered -32603");
        }
        _ = output.gone() => {
            let cut = cancel_calls(shared, tasks).await;
            tracing::warn!(
                waited_ms = waited.elapsed().as_millis() as u64,
                "stdout closed while waiting; cancelled {cut} call(s) still running"
            );
        }
    }
}

/// Cancels every call and waits for their tasks; returns how many calls the
/// cancellation cut short (a call that finished meanwhile is not counted).
async fn cancel_calls(shared: &Shared, tasks: &mut JoinSet<bool>) -> usize {
    shared.shutdown.cancel();
    let mut cut = 0;
    let joined = tokio::time::timeout(CANCELLED_CALLS_BOUND, async {
        while let Some(r) = tasks.join_next().await {
            cut += usize::from(r.unwrap_or(false));
        }
    })
    .await;
    if joined.is_err() {
        tracing::warn!(remaining = tasks.len(), "cancelled calls did not end; abandoning them");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    cut
}

fn handle_line(shared: &Arc<Shared>, session: &mut Session, line: Line, calls: &mut Calls) {
    let bytes = match line {
        Line::TooLong { len, id } => {
            let id = oversized_line_id(id.as_deref());
            tracing::warn!(bytes = len, limit = shared.opts.max_message_bytes, request_id = %id, "discarded an oversized message");
            let err = RpcError::new(
                INVALID_REQUEST,
                format!(
                    "Invalid Request: message of {len} bytes exceeds the limit of {} bytes; it was discarded",
                    shared.opts.max_message_bytes
                ),
            );
            send(shared, error_msg(&id, &err));
            return;
        }
        Line::Data(b) => b,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let err = RpcError::new(PARSE_ERROR, format!("Parse error: invalid UTF-8 at byte {}", e.valid_up_to()));
            send(shared, error_msg(&Value::Null, &err));
            return;
        }
    };
    if let Some(id) = plain_ping(text) {
        shared.out.send(ping_answer(&id));
        return;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let err = RpcError::new(PARSE_ERROR, format!("Parse error: {e}"));
            send(shared, error_msg(&Value::Null, &err));
            return;
        }
    };
    match classify(value) {
        Incoming::Invalid { id, message } => {
            send(shared, error_msg(&id, &RpcError::new(INVALID_REQUEST, message)));
        }
        Incoming::Response => tracing::debug!("ignoring a response from the client (this server sends no requests)"),
        Incoming::Notification { method, params } => handle_notification(shared, session, &method, &params),
        Incoming::Request { id, method, params } => {
            handle_request(shared, session, id, method, params, calls);
        }
    }
}

fn handle_notification(shared: &Shared, session: &mut Session, method: &str, params: &Map<String, Value>) {
    match method {
        "notifications/initialized" => {
            if session.legacy.is_none() {
                tracing::debug!("notifications/initialized before initialize; ignored");
            }
            session.initialized_notified = true;
        }
        "notifications/cancelled" => {
            let Some(rid) = params.get("requestId") else {
                tracing::debug!("notifications/cancelled without requestId; ignored");
                return;
            };
            let key = rid.to_string();
            let reason = params.get("reason").and_then(Value::as_str).unwrap_or("");
            let inflight = shared.inflight.lock();
            match inflight.get(&key) {
                Some(f) => {
                    tracing::debug!(request_id = %key, reason, "client cancelled a call");
                    f.client_cancelled.store(true, Ordering::SeqCst);
                    f.token.cancel();
                }
                None => tracing::debug!(request_id = %key, "cancellation for no call in progress; ignored"),
            }
        }
        other => tracing::debug!(method = %truncate(other, 100), "ignoring notification"),
    }
}

/// Reads the request's era (the 2026 envelope, else the stream's 2025
/// state) and dispatches it; a malformed envelope is answered at once.
fn handle_request(shared: &Arc<Shared>, session: &mut Session, id: Value, method: String, params: Map<String, Value>, calls: &mut Calls) {
    let traceparent = params.get("_meta").and_then(|m| m.get("traceparent")).and_then(Value::as_str).map(|s| truncate(s, 128));
    let era = if method == "initialize" {
        Ok(legacy_era(session))
    } else {
        parse_envelope(&params).map(|env| match env {
            Some((version, client)) => Era::Modern { version, client },
            None => legacy_era(session),
        })
    };
    match era {
        Ok(era) => dispatch(shared, session, Request { id, method, params, era, traceparent }, calls),
        Err(e) => reply(shared, &id, Err(e)),
    }
}

fn reply(shared: &Shared, id: &Value, result: Result<Value, RpcError>) {
    let msg = match result {
        Ok(r) => result_msg(id, r),
        Err(e) => error_msg(id, &e),
    };
    send(shared, msg);
}

fn dispatch(shared: &Arc<Shared>, session: &mut Session, mut req: Request, calls: &mut Calls) {
    let needs_initialize = !req.era.is_modern() && session.legacy.is_none();
    let result = match req.method.as_str() {
        "initialize" => initialize(&shared.opts, session, &req.params).map(Value::Object),
        "server/discover" => Ok(discover(&shared.opts)),
        "ping" if req.era.is_modern() => {
            Err(RpcError::new(METHOD_NOT_FOUND, "Method not found: 'ping' does not exist in protocol 2026-07-28"))
        }
        "ping" => Ok(json!({})),
        "tools/list" | "tools/call" if needs_initialize => Err(not_initialized(&req.method)),
        "tools/list" => list_tools(shared, &req.params, &req.era),
        "tools/call" => match prepare_call(shared, &mut req) {
            Ok(prepared) => return start_call(shared, req, prepared, calls),
            Err(e) => Err(e),
        },
        "logging/setLevel" => {
            Err(RpcError::new(METHOD_NOT_FOUND, "Method not found: 'logging/setLevel' (this server does not offer the logging capability)"))
        }
        other => Err(RpcError::new(METHOD_NOT_FOUND, format!("Method not found: '{}'", truncate(other, 100)))),
    };
    reply(shared, &req.id, result);
}

fn not_initialized(method: &str) -> RpcError {
    RpcError::new(
        INVALID_REQUEST,
        format!(
            "Invalid Request: '{method}' before initialize; send initialize first (2025 era) \
             or put the 2026-07-28 envelope in params._meta"
        ),
    )
}
