//! `tools/list`: pages of the catalog behind opaque cursors.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::era::{finish_result, Era};
use super::jsonrpc::RpcError;
use super::schema::type_name;
use super::shared::Shared;

pub(super) const CURSOR_PREFIX: &str = "logai-tools:v1:";

pub(super) fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{offset}"))
}

pub(super) fn decode_cursor(cursor: &str, len: usize) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let offset: usize = text.strip_prefix(CURSOR_PREFIX)?.parse().ok()?;
    (offset > 0 && offset < len).then_some(offset)
}

pub(super) fn list_tools(shared: &Shared, params: &Map<String, Value>, era: &Era) -> Result<Value, RpcError> {
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

#[cfg(test)]
pub(super) fn cursor_for_tests(offset: usize) -> String {
    encode_cursor(offset)
}
