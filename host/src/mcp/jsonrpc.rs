//! JSON-RPC 2.0 as this server speaks it: error codes, classifying an
//! incoming message, the ids it echoes, the quick reading of a plain
//! `ping`, and the lines it writes.

use serde_json::{json, Map, Value};

use super::schema::type_name;

// JSON-RPC and MCP error codes.
pub(super) const PARSE_ERROR: i64 = -32700;
pub(super) const INVALID_REQUEST: i64 = -32600;
pub(super) const METHOD_NOT_FOUND: i64 = -32601;
pub(super) const INVALID_PARAMS: i64 = -32602;
pub(super) const INTERNAL_ERROR: i64 = -32603;
pub(super) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A JSON-RPC error to send.
#[derive(Debug, Clone)]
pub(super) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub(super) fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }
    pub(super) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    /// `-32602` naming a JSON path into the request.
    pub(super) fn params(path: &str, message: impl std::fmt::Display) -> Self {
        RpcError::new(INVALID_PARAMS, format!("{path}: {message}")).with_data(json!({ "path": path }))
    }
}

pub(super) fn result_msg(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub(super) fn error_msg(id: &Value, err: &RpcError) -> Value {
    let mut e = json!({"code": err.code, "message": err.message});
    if let Some(d) = &err.data {
        e["data"] = d.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": e})
}

/// A classified incoming message.
pub(super) enum Incoming {
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
pub(super) fn is_echoable_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// The id to answer an oversized line with: its top-level `id` when that is
/// one we would echo had the line parsed, else null.
pub(super) fn oversized_line_id(text: Option<&[u8]>) -> Value {
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
///
/// A line that does not hold the string `"ping"` is not parsed here at all:
/// every `tools/call` line passed through this parse before, and after idle
/// it was a tenth of the call's time on the session thread (`perf`). A ping
/// whose method is spelled with escapes takes the general path, which
/// answers it the same.
pub(super) fn plain_ping(text: &str) -> Option<Value> {
    memchr::memmem::find(text.as_bytes(), b"\"ping\"")?;
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
pub(super) fn ping_answer(id: &Value) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#)
}

/// A line as [`plain_ping`] reads it and as the general path does (the id of
/// a `ping` with no params), and the answers each would write for that id.
#[cfg(test)]
pub(super) fn ping_readings(text: &str) -> (Option<Value>, Option<Value>) {
    let general = match serde_json::from_str(text).map(classify) {
        Ok(Incoming::Request { id, method, params }) if method == "ping" && params.is_empty() => Some(id),
        _ => None,
    };
    (plain_ping(text), general)
}

#[cfg(test)]
pub(super) fn ping_answers(id: &Value) -> (String, String) {
    (ping_answer(id), result_msg(id, json!({})).to_string())
}

pub(super) fn classify(value: Value) -> Incoming {
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

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
