//! Protocol era negotiation: the 2025 `initialize` handshake (the only
//! state a stream keeps) and the 2026-07-28 per-request envelope in
//! `params._meta`; how the server presents itself and stamps results in
//! each era.

use serde_json::{json, Map, Value};

use super::jsonrpc::{truncate, RpcError, UNSUPPORTED_PROTOCOL_VERSION};
use super::schema::type_name;
use super::{ServerOptions, LEGACY_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS};

pub(super) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(super) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub(super) const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub(super) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The protocol era a request is served under.
#[derive(Debug, Clone)]
pub(super) enum Era {
    /// 2025 era: the version negotiated by `initialize` (empty before it).
    Legacy { version: String, client: Option<String> },
    /// 2026-07-28: everything the request declared in its `_meta`.
    Modern { version: String, client: Option<String> },
}

impl Era {
    pub(super) fn version(&self) -> &str {
        match self {
            Era::Legacy { version, .. } | Era::Modern { version, .. } => version,
        }
    }
    pub(super) fn client(&self) -> Option<String> {
        match self {
            Era::Legacy { client, .. } | Era::Modern { client, .. } => client.clone(),
        }
    }
    pub(super) fn is_modern(&self) -> bool {
        matches!(self, Era::Modern { .. })
    }
}

/// Per-stream 2025-era state (the only state the stream keeps; 2026
/// requests never read it).
#[derive(Default)]
pub(super) struct Session {
    /// Set by `initialize`: negotiated version and `name/version` of the client.
    pub(super) legacy: Option<(String, Option<String>)>,
    pub(super) initialized_notified: bool,
}

/// The 2026 envelope of a request, if it has one.
pub(super) fn parse_envelope(params: &Map<String, Value>) -> Result<Option<(String, Option<String>)>, RpcError> {
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
pub(super) fn client_info(info: &Value, path: &str) -> Result<String, RpcError> {
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

pub(super) fn server_info(opts: &ServerOptions) -> Value {
    let mut info = json!({"name": opts.name, "version": opts.version});
    if let Some(t) = &opts.title {
        info["title"] = json!(t);
    }
    info
}

pub(super) fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

/// The `server/discover` result: every version this server speaks, how it
/// presents itself, and how long a client may cache that.
pub(super) fn discover(opts: &ServerOptions) -> Value {
    let mut r = Map::new();
    let mut versions: Vec<&str> = MODERN_PROTOCOL_VERSIONS.to_vec();
    versions.extend_from_slice(LEGACY_PROTOCOL_VERSIONS);
    r.insert("supportedVersions".into(), json!(versions));
    r.insert("capabilities".into(), capabilities());
    r.insert("serverInfo".into(), server_info(opts));
    if let Some(i) = &opts.instructions {
        r.insert("instructions".into(), json!(i));
    }
    r.insert("ttlMs".into(), json!(opts.cache_ttl.as_millis() as u64));
    r.insert("cacheScope".into(), json!("public"));
    modern_result(opts, r)
}

/// Stamp a 2026 result: `resultType` and the server's identity in `_meta`.
pub(super) fn modern_result(opts: &ServerOptions, mut result: Map<String, Value>) -> Value {
    result.insert("resultType".into(), json!("complete"));
    let meta = result.entry("_meta").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        m.entry(META_SERVER_INFO).or_insert_with(|| server_info(opts));
    }
    Value::Object(result)
}

pub(super) fn finish_result(opts: &ServerOptions, era: &Era, result: Map<String, Value>) -> Value {
    if era.is_modern() {
        modern_result(opts, result)
    } else {
        Value::Object(result)
    }
}

pub(super) fn legacy_era(session: &Session) -> Era {
    Era::Legacy {
        version: session.legacy.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
        client: session.legacy.as_ref().and_then(|l| l.1.clone()),
    }
}

pub(super) fn initialize(opts: &ServerOptions, session: &mut Session, params: &Map<String, Value>) -> Result<Map<String, Value>, RpcError> {
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
    r.insert("serverInfo".into(), server_info(opts));
    if let Some(i) = &opts.instructions {
        r.insert("instructions".into(), json!(i));
    }
    Ok(r)
}
