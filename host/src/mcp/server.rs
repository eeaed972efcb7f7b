//! The dispatcher: reads messages, answers the cheap ones in order on the
//! read loop, runs each `tools/call` on the read loop until it first waits
//! and then as a task of its own, and writes every outgoing line in order
//! from whichever task made it (`writer::Outbox`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::reader::{Line, LineReader};
use super::schema::{first_violation, plugin_path_to_params, type_name, Catalog, CatalogEntry};
use super::writer::{Outbox, OutputProbe, OutputWatch};
use super::{ServerOptions, LEGACY_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS};
use crate::call::{CallScope, Progress, ProgressSink, ToolCallError, ToolHost, ToolOutput};

// JSON-RPC and MCP error codes.
pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;
pub(crate) const INTERNAL_ERROR: i64 = -32603;
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const CURSOR_PREFIX: &str = "logai-tools:v1:";

/// A JSON-RPC error to send.
#[derive(Debug, Clone)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }
    fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    /// `-32602` naming a JSON path into the request.
    fn params(path: &str, message: impl std::fmt::Display) -> Self {
        RpcError::new(INVALID_PARAMS, format!("{path}: {message}")).with_data(json!({ "path": path }))
    }
}

/// The protocol era a request is served under.
#[derive(Debug, Clone)]
enum Era {
    /// 2025 era: the version negotiated by `initialize` (empty before it).
    Legacy { version: String, client: Option<String> },
    /// 2026-07-28: everything the request declared in its `_meta`.
    Modern { version: String, client: Option<String> },
}

impl Era {
    fn version(&self) -> &str {
        match self {
            Era::Legacy { version, .. } | Era::Modern { version, .. } => version,
        }
    }
    fn client(&self) -> Option<String> {
        match self {
            Era::Legacy { client, .. } | Era::Modern { client, .. } => client.clone(),
        }
    }
    fn is_modern(&self) -> bool {
        matches!(self, Era::Modern { .. })
    }
}

/// Per-stream 2025-era state (the only state the stream keeps; 2026
/// requests never read it).
#[derive(Default)]
struct Session {
    /// Set by `initialize`: negotiated version and `name/version` of the client.
    legacy: Option<(String, Option<String>)>,
    initialized_notified: bool,
}

struct InFlight {
    token: CancellationToken,
    client_cancelled: Arc<AtomicBool>,
}

struct Shared {
    host: Arc<dyn ToolHost>,
    opts: ServerOptions,
    catalog: Catalog,
    out: Arc<Outbox>,
    inflight: Mutex<HashMap<String, InFlight>>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
}

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

/// The session's calls: the one the line just read started, and those
/// running as tasks of their own.
#[derive(Default)]
struct Calls {
    started: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
    tasks: JoinSet<bool>,
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

fn send(shared: &Shared, msg: Value) {
    // Written now when the writer takes it; a broken output drops it (and
    // was logged once).
    shared.out.send(msg.to_string());
}

fn result_msg(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error_msg(id: &Value, err: &RpcError) -> Value {
    let mut e = json!({"code": err.code, "message": err.message});
    if let Some(d) = &err.data {
        e["data"] = d.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": e})
}

/// A classified incoming message.
enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    /// A response from the client (we send no requests; ignored).
    Response,
    Invalid {
        id: Value,
        message: String,
    },
}

/// JSON-RPC ids this server echoes: strings and integers.
fn is_echoable_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// The id to answer an oversized line with: its top-level `id` when that is
/// one we would echo had the line parsed, else null.
fn oversized_line_id(text: Option<&[u8]>) -> Value {
    text.and_then(|t| serde_json::from_slice::<Value>(t).ok()).filter(is_echoable_id).unwrap_or(Value::Null)
}

/// The id of a plain `ping` (`jsonrpc`, `id`, `method` and at most an empty
/// `params`, nothing else), read without building the line's JSON tree;
/// `None` for anything else, which takes the general path.
///
/// Clients ping sessions that sat idle, and after idle every instruction
/// and byte a request touches is a cache miss: the JSON tree, the
/// dispatcher and the answer's tree were most of what a ping cost (about
/// half of its round trip after 1 s). A plain ping is answered here with
/// the same bytes the general path writes ([`ping_answer`]).
fn plain_ping(text: &str) -> Option<Value> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ping<'a> {
        jsonrpc: &'a str,
        id: Value,
        method: &'a str,
        #[serde(default)]
        params: Option<Map<String, Value>>,
    }
    let p: Ping = serde_json::from_str(text).ok()?;
    (p.jsonrpc == "2.0" && p.method == "ping" && p.params.is_none_or(|m| m.is_empty()) && is_echoable_id(&p.id)).then_some(p.id)
}

/// `{"jsonrpc":"2.0","id":ID,"result":{}}`: what `result_msg(id, {})` serializes to.
fn ping_answer(id: &Value) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#)
}

/// A line as [`plain_ping`] reads it and as the general path does (the id of
/// a `ping` with no params), and the answers each would write for that id.
#[cfg(test)]
pub(crate) fn ping_readings(text: &str) -> (Option<Value>, Option<Value>) {
    let general = match serde_json::from_str(text).map(classify) {
        Ok(Incoming::Request { id, method, params }) if method == "ping" && params.is_empty() => Some(id),
        _ => None,
    };
    (plain_ping(text), general)
}

#[cfg(test)]
pub(crate) fn ping_answers(id: &Value) -> (String, String) {
    (ping_answer(id), result_msg(id, json!({})).to_string())
}

fn classify(value: Value) -> Incoming {
    let mut obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Incoming::Invalid {
                id: Value::Null,
                message: "Invalid Request: JSON-RPC batches are not supported (removed from MCP in 2025-06-18); \
                          send one message per line"
                    .into(),
            }
        }
        other => {
            return Incoming::Invalid {
                id: Value::Null,
                message: format!("Invalid Request: expected a JSON-RPC 2.0 object, got {}", type_name(&other)),
            }
        }
    };
    // The id, when it is one we can echo.
    let id = match obj.get("id") {
        None => None,
        Some(v) if is_echoable_id(v) => Some(v.clone()),
        Some(other) => {
            return Incoming::Invalid {
                id: Value::Null,
                message: format!("Invalid Request: $.id: expected string or integer, got {}", type_name(other)),
            }
        }
    };
    let echo = id.clone().unwrap_or(Value::Null);
    match obj.get("jsonrpc") {
        Some(Value::String(s)) if s == "2.0" => {}
        Some(other) => {
            return Incoming::Invalid { id: echo, message: format!("Invalid Request: $.jsonrpc: expected \"2.0\", got {other}") }
        }
        None => return Incoming::Invalid { id: echo, message: "Invalid Request: $.jsonrpc: required (\"2.0\")".into() },
    }
    let method = match obj.get("method") {
        Some(Value::String(m)) => m.clone(),
        Some(other) => {
            return Incoming::Invalid { id: echo, message: format!("Invalid Request: $.method: expected string, got {}", type_name(other)) }
        }
        None if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) => return Incoming::Response,
        None => return Incoming::Invalid { id: echo, message: "Invalid Request: $.method: required".into() },
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Incoming::Invalid {
                id: echo,
                message: format!("Invalid Request: $.params: expected object, got {}", type_name(&other)),
            }
        }
    };
    match id {
        Some(id) => Incoming::Request { id, method, params },
        None => Incoming::Notification { method, params },
    }
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

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The 2026 envelope of a request, if it has one.
fn parse_envelope(params: &Map<String, Value>) -> Result<Option<(String, Option<String>)>, RpcError> {
    let meta = match params.get("_meta") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(RpcError::params("$.params._meta", format!("expected object, got {}", type_name(other)))),
    };
    let modern = meta.contains_key(META_PROTOCOL_VERSION) || meta.contains_key(META_CLIENT_CAPABILITIES);
    if !modern {
        return Ok(None);
    }
    let vpath = format!("$.params._meta['{META_PROTOCOL_VERSION}']");
    let version = match meta.get(META_PROTOCOL_VERSION) {
        Some(Value::String(v)) => v.clone(),
        Some(other) => return Err(RpcError::params(&vpath, format!("expected string, got {}", type_name(other)))),
        None => return Err(RpcError::params(&vpath, "required (the protocol version of this request)")),
    };
    if !MODERN_PROTOCOL_VERSIONS.contains(&version.as_str()) {
        return Err(RpcError::new(
            UNSUPPORTED_PROTOCOL_VERSION,
            format!(
                "Unsupported protocol version '{}'; this server supports {} per request (and {} through initialize)",
                truncate(&version, 64),
                MODERN_PROTOCOL_VERSIONS.join(", "),
                LEGACY_PROTOCOL_VERSIONS.join(", ")
            ),
        )
        .with_data(json!({"supported": MODERN_PROTOCOL_VERSIONS, "requested": version})));
    }
    let cpath = format!("$.params._meta['{META_CLIENT_CAPABILITIES}']");
    match meta.get(META_CLIENT_CAPABILITIES) {
        Some(Value::Object(_)) => {}
        Some(other) => return Err(RpcError::params(&cpath, format!("expected object, got {}", type_name(other)))),
        None => return Err(RpcError::params(&cpath, "required (an object; {} when the client offers nothing)")),
    }
    let client = match meta.get(META_CLIENT_INFO) {
        None | Some(Value::Null) => None,
        Some(info) => Some(client_info(info, &format!("$.params._meta['{META_CLIENT_INFO}']"))?),
    };
    Ok(Some((version, client)))
}

/// `name/version` from an `Implementation` object.
fn client_info(info: &Value, path: &str) -> Result<String, RpcError> {
    let Value::Object(o) = info else {
        return Err(RpcError::params(path, format!("expected object, got {}", type_name(info))));
    };
    let name = match o.get("name") {
        Some(Value::String(n)) => n,
        Some(other) => return Err(RpcError::params(&format!("{path}.name"), format!("expected string, got {}", type_name(other)))),
        None => return Err(RpcError::params(&format!("{path}.name"), "required")),
    };
    let version = o.get("version").and_then(Value::as_str).unwrap_or("");
    Ok(if version.is_empty() { truncate(name, 128) } else { format!("{}/{}", truncate(name, 128), truncate(version, 64)) })
}

fn server_info(opts: &ServerOptions) -> Value {
    let mut info = json!({"name": opts.name, "version": opts.version});
    if let Some(t) = &opts.title {
        info["title"] = json!(t);
    }
    info
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

/// Stamp a 2026 result: `resultType` and the server's identity in `_meta`.
fn modern_result(opts: &ServerOptions, mut result: Map<String, Value>) -> Value {
    result.insert("resultType".into(), json!("complete"));
    let meta = result.entry("_meta").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        m.entry(META_SERVER_INFO).or_insert_with(|| server_info(opts));
    }
    Value::Object(result)
}

fn finish_result(opts: &ServerOptions, era: &Era, result: Map<String, Value>) -> Value {
    if era.is_modern() {
        modern_result(opts, result)
    } else {
        Value::Object(result)
    }
}

fn handle_request(
    shared: &Arc<Shared>,
    session: &mut Session,
    id: Value,
    method: String,
    mut params: Map<String, Value>,
    calls: &mut Calls,
) {
    let traceparent = params.get("_meta").and_then(|m| m.get("traceparent")).and_then(Value::as_str).map(|s| truncate(s, 128));
    let era = if method == "initialize" {
        Ok(legacy_era(session))
    } else {
        parse_envelope(&params).map(|env| match env {
            Some((version, client)) => Era::Modern { version, client },
            None => legacy_era(session),
        })
    };
    let reply = |result: Result<Value, RpcError>| {
        let msg = match result {
            Ok(r) => result_msg(&id, r),
            Err(e) => error_msg(&id, &e),
        };
        send(shared, msg);
    };
    let era = match era {
        Ok(e) => e,
        Err(e) => return reply(Err(e)),
    };
    let not_initialized = || {
        RpcError::new(
            INVALID_REQUEST,
            format!(
                "Invalid Request: '{method}' before initialize; send initialize first (2025 era) \
                 or put the 2026-07-28 envelope in params._meta"
            ),
        )
    };
    match method.as_str() {
        "initialize" => reply(initialize(shared, session, &params).map(Value::Object)),
        "server/discover" => {
            let mut r = Map::new();
            let mut versions: Vec<&str> = MODERN_PROTOCOL_VERSIONS.to_vec();
            versions.extend_from_slice(LEGACY_PROTOCOL_VERSIONS);
            r.insert("supportedVersions".into(), json!(versions));
            r.insert("capabilities".into(), capabilities());
            r.insert("serverInfo".into(), server_info(&shared.opts));
            if let Some(i) = &shared.opts.instructions {
                r.insert("instructions".into(), json!(i));
            }
            r.insert("ttlMs".into(), json!(shared.opts.cache_ttl.as_millis() as u64));
            r.insert("cacheScope".into(), json!("public"));
            reply(Ok(modern_result(&shared.opts, r)))
        }
        "ping" if era.is_modern() => {
            reply(Err(RpcError::new(METHOD_NOT_FOUND, "Method not found: 'ping' does not exist in protocol 2026-07-28")))
        }
        "ping" => reply(Ok(json!({}))),
        "tools/list" => {
            if !era.is_modern() && session.legacy.is_none() {
                return reply(Err(not_initialized()));
            }
            let r = list_tools(shared, &params, &era);
            reply(r)
        }
        "tools/call" => {
            if !era.is_modern() && session.legacy.is_none() {
                return reply(Err(not_initialized()));
            }
            match prepare_call(shared, &id, &mut params) {
                Ok(prepared) => start_call(shared, id.clone(), prepared, era, traceparent.clone(), &params, calls),
                Err(e) => reply(Err(e)),
            }
        }
        "logging/setLevel" => reply(Err(RpcError::new(
            METHOD_NOT_FOUND,
            "Method not found: 'logging/setLevel' (this server does not offer the logging capability)",
        ))),
        other => {
            let msg = format!("Method not found: '{}'", truncate(other, 100));
            reply(Err(RpcError::new(METHOD_NOT_FOUND, msg)))
        }
    }
}

fn legacy_era(session: &Session) -> Era {
    Era::Legacy {
        version: session.legacy.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
        client: session.legacy.as_ref().and_then(|l| l.1.clone()),
    }
}

fn initialize(shared: &Shared, session: &mut Session, params: &Map<String, Value>) -> Result<Map<String, Value>, RpcError> {
    let requested = match params.get("protocolVersion") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => return Err(RpcError::params("$.params.protocolVersion", format!("expected string, got {}", type_name(other)))),
        None => return Err(RpcError::params("$.params.protocolVersion", "required")),
    };
    match params.get("capabilities") {
        None | Some(Value::Object(_)) => {}
        Some(other) => return Err(RpcError::params("$.params.capabilities", format!("expected object, got {}", type_name(other)))),
    }
    let client = match params.get("clientInfo") {
        None | Some(Value::Null) => None,
        Some(info) => Some(client_info(info, "$.params.clientInfo")?),
    };
    let negotiated =
        if LEGACY_PROTOCOL_VERSIONS.contains(&requested.as_str()) { requested.clone() } else { LEGACY_PROTOCOL_VERSIONS[0].to_string() };
    if session.legacy.is_some() {
        tracing::debug!("initialize received again; renegotiating");
    }
    tracing::info!(client = client.as_deref().unwrap_or("unknown"), requested = %truncate(&requested, 32), negotiated = %negotiated, "initialize");
    session.legacy = Some((negotiated.clone(), client));
    session.initialized_notified = false;
    let mut r = Map::new();
    r.insert("protocolVersion".into(), json!(negotiated));
    r.insert("capabilities".into(), capabilities());
    r.insert("serverInfo".into(), server_info(&shared.opts));
    if let Some(i) = &shared.opts.instructions {
        r.insert("instructions".into(), json!(i));
    }
    Ok(r)
}

pub(crate) fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{offset}"))
}

fn decode_cursor(cursor: &str, len: usize) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let offset: usize = text.strip_prefix(CURSOR_PREFIX)?.parse().ok()?;
    (offset > 0 && offset < len).then_some(offset)
}

fn list_tools(shared: &Shared, params: &Map<String, Value>, era: &Era) -> Result<Value, RpcError> {
    let entries = &shared.catalog.entries;
    let offset = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => decode_cursor(c, entries.len())
            .ok_or_else(|| RpcError::params("$.params.cursor", "invalid cursor (use the nextCursor of a previous tools/list result)"))?,
        Some(other) => return Err(RpcError::params("$.params.cursor", format!("expected string, got {}", type_name(other)))),
    };
    let page = shared.opts.tools_page_size.max(1);
    let end = (offset + page).min(entries.len());
    let tools: Vec<Value> = entries[offset..end].iter().map(|e| e.listing.clone()).collect();
    let mut r = Map::new();
    r.insert("tools".into(), Value::Array(tools));
    if end < entries.len() {
        r.insert("nextCursor".into(), json!(encode_cursor(end)));
    }
    if era.is_modern() {
        r.insert("ttlMs".into(), json!(shared.opts.cache_ttl.as_millis() as u64));
        r.insert("cacheScope".into(), json!("public"));
    }
    Ok(finish_result(&shared.opts, era, r))
}

struct PreparedCall {
    index: usize,
    arguments: Value,
}

fn prepare_call(shared: &Shared, id: &Value, params: &mut Map<String, Value>) -> Result<PreparedCall, RpcError> {
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
struct ProgressState {
    last: Option<f64>,
    done: bool,
}

#[allow(clippy::too_many_arguments)]
fn start_call(
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

/// A tool's answer as an MCP `CallToolResult`, or the JSON-RPC error it maps to.
fn shape_result(entry: &CatalogEntry, r: Result<ToolOutput, ToolCallError>) -> Result<Map<String, Value>, RpcError> {
    let tool = &entry.desc.name;
    let plugin = &entry.desc.plugin;
    let out = match r {
        Ok(out) => out,
        Err(ToolCallError::UnknownTool(name)) => {
            return Err(RpcError::new(INVALID_PARAMS, format!("unknown tool '{}'", truncate(&name, 128)))
                .with_data(json!({"path": "$.params.name"})))
        }
        Err(ToolCallError::InvalidArguments { path, message }) => {
            let path = plugin_path_to_params(&path);
            return Err(RpcError::new(INVALID_PARAMS, format!("{path}: {message}"))
                .with_data(json!({"path": path, "reason": message, "tool": tool})));
        }
        Err(ToolCallError::Internal(message)) => {
            return Err(RpcError::new(INTERNAL_ERROR, message).with_data(json!({"tool": tool, "plugin": plugin})))
        }
    };
    let mut content = out.content;
    if let Some(sc) = &out.structured_content {
        if !sc.is_object() {
            return Err(RpcError::new(
                INTERNAL_ERROR,
                format!("plugin '{plugin}' returned structuredContent for tool '{tool}' that is {}, not a JSON object", type_name(sc)),
            )
            .with_data(json!({"tool": tool, "plugin": plugin})));
        }
        if !out.is_error {
            if let Some(Ok(validator)) = &entry.output {
                if let Some(v) = first_violation(validator, sc, "$.structuredContent") {
                    return Err(RpcError::new(
                        INTERNAL_ERROR,
                        format!(
                            "plugin '{plugin}' returned structuredContent for tool '{tool}' that does not match \
                             its outputSchema: {}: {}",
                            v.path, v.message
                        ),
                    )
                    .with_data(json!({"tool": tool, "plugin": plugin, "path": v.path})));
                }
            }
        }
        // Clients that predate structuredContent read the text blocks.
        let has_text = content.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("text"));
        if !has_text {
            content.push(json!({"type": "text", "text": sc.to_string()}));
        }
    } else if !out.is_error && matches!(entry.output, Some(Ok(_))) {
        return Err(RpcError::new(
            INTERNAL_ERROR,
            format!("plugin '{plugin}' declares an outputSchema for tool '{tool}' but returned no structuredContent"),
        )
        .with_data(json!({"tool": tool, "plugin": plugin})));
    }
    let mut r = Map::new();
    r.insert("content".into(), Value::Array(content));
    if let Some(sc) = out.structured_content {
        r.insert("structuredContent".into(), sc);
    }
    r.insert("isError".into(), json!(out.is_error));
    Ok(r)
}

#[cfg(test)]
pub(crate) fn cursor_for_tests(offset: usize) -> String {
    encode_cursor(offset)
}
