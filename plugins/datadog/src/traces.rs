//! APM traces for the Datadog trace agent (`/v0.4/traces`, msgpack): an
//! array of traces, each an array of spans.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Event, Kind};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DdSpan {
    pub trace_id: u64,
    pub span_id: u64,
    pub parent_id: u64,
    pub name: String,
    pub resource: String,
    pub service: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub start: i64,
    pub duration: i64,
    pub error: i32,
    pub meta: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
}

/// Unified service tagging (`DD_SERVICE`, `DD_ENV`, `DD_VERSION`).
#[derive(Clone, Debug, Default)]
pub struct ServiceInfo {
    pub service: String,
    pub env: String,
    pub version: String,
}

/// Lower 64 bits of a 128-bit hex trace id (Datadog's trace id).
pub fn lower_u64(hex: &str) -> u64 {
    let h = hex.trim();
    let tail = if h.len() > 16 { &h[h.len() - 16..] } else { h };
    u64::from_str_radix(tail, 16).unwrap_or(0)
}

/// Upper 64 bits as 16 hex chars (`_dd.p.tid`), when nonzero.
pub fn upper_hex(hex: &str) -> Option<String> {
    let h = hex.trim();
    if h.len() == 32 && &h[..16] != "0000000000000000" && u64::from_str_radix(&h[..16], 16).is_ok() {
        Some(h[..16].to_ascii_lowercase())
    } else {
        None
    }
}

/// Attributes that are numbers go to `metrics`, the rest to `meta`.
const NUMERIC: &[&str] =
    &["files_searched", "files_matched", "result_count", "bytes_scanned", "permits_in_use", "permits_limit", "waited_ms", "bytes"];

pub fn span_for(e: &Event, info: &ServiceInfo) -> Option<DdSpan> {
    if e.kind != Kind::Span {
        return None;
    }
    let trace_id = lower_u64(&e.trace_id);
    let span_id = u64::from_str_radix(e.span_id.trim(), 16).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    let parent_id = e.parent_span_id.as_deref().and_then(|p| u64::from_str_radix(p.trim(), 16).ok()).unwrap_or(0);
    let name = if e.name == "tool.call" { e.attr("tool").unwrap_or("tool.call").to_string() } else { e.name.clone() };
    let resource = e
        .attr("service")
        .filter(|s| !s.is_empty())
        .or_else(|| e.attr("tool"))
        .or_else(|| e.attr("method"))
        .or_else(|| e.attr("op"))
        .unwrap_or(&e.name)
        .to_string();
    let mut meta = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    for (k, v) in &e.attributes {
        if NUMERIC.contains(&k.as_str()) {
            if let Ok(n) = v.parse::<f64>() {
                metrics.insert(k.clone(), n);
                continue;
            }
        }
        // `service` is the Datadog service (DD_SERVICE); the log service goes under its own key.
        let key = if k == "service" { "log.service".to_string() } else { k.clone() };
        meta.insert(key, v.clone());
    }
    if !info.env.is_empty() {
        meta.insert("env".into(), info.env.clone());
    }
    if !info.version.is_empty() {
        meta.insert("version".into(), info.version.clone());
    }
    meta.insert("language".into(), "rust".into());
    meta.insert("span.kind".into(), if e.name == "mcp.request" { "server".into() } else { "internal".into() });
    let error = if e.is_ok() { 0 } else { 1 };
    if error == 1 {
        meta.insert("error.type".into(), e.status.clone());
        if let Some(msg) = e.attr("error").map(str::to_string).or_else(|| e.message.clone()) {
            meta.insert("error.message".into(), msg);
        }
    }
    let is_root = parent_id == 0 || e.attr_bool("root");
    if is_root {
        if let Some(tid) = upper_hex(&e.trace_id) {
            meta.insert("_dd.p.tid".into(), tid);
        }
        metrics.insert("_dd.top_level".into(), 1.0);
        metrics.insert("_sampling_priority_v1".into(), 1.0);
    }
    Some(DdSpan {
        trace_id,
        span_id,
        parent_id,
        name,
        resource,
        service: info.service.clone(),
        ty: "custom".into(),
        start: (e.timestamp_ms as i64).saturating_mul(1_000_000),
        duration: (e.duration_us as i64).saturating_mul(1_000),
        error,
        meta,
        metrics,
    })
}

/// Group span events into traces (by trace id, in order of first appearance).
pub fn traces(batch: &[Event], info: &ServiceInfo) -> Vec<Vec<DdSpan>> {
    let mut order: Vec<u64> = Vec::new();
    let mut by: BTreeMap<u64, Vec<DdSpan>> = BTreeMap::new();
    for e in batch {
        if let Some(s) = span_for(e, info) {
            if !by.contains_key(&s.trace_id) {
                order.push(s.trace_id);
            }
            by.entry(s.trace_id).or_default().push(s);
        }
    }
    let mut out: Vec<Vec<DdSpan>> = order.into_iter().filter_map(|t| by.remove(&t)).collect();
    // The tool call span opens before the log service is known: its
    // resource is the service its search used.
    for trace in &mut out {
        if let Some(svc) = trace.iter().find_map(|s| s.meta.get("log.service").cloned()) {
            for s in trace.iter_mut() {
                if !s.meta.contains_key("log.service") && (s.metrics.contains_key("_dd.top_level") || s.meta.contains_key("tool")) {
                    s.resource = svc.clone();
                }
            }
        }
    }
    out
}

/// The msgpack body of a `/v0.4/traces` request.
pub fn encode(traces: &[Vec<DdSpan>]) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(traces).map_err(|e| format!("encoding traces: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, span: &str, parent: Option<&str>, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: Kind::Span,
            timestamp_ms: 1_700_000_000_000,
            name: name.into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: span.into(),
            parent_span_id: parent.map(str::to_string),
            duration_us: 1500,
            status: "ok".into(),
            attributes: attrs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            message: None,
            metric: None,
            breadcrumbs: Vec::new(),
        }
    }

    #[test]
    fn spans_carry_ids_names_and_unified_tags() {
        let info = ServiceInfo { service: "logai".into(), env: "test".into(), version: "1.2.3".into() };
        let batch = vec![
            ev("search", "00000000000000b2", Some("00000000000000b1"), &[("service", "nginx"), ("files_matched", "2")]),
            ev("tool.call", "00000000000000b1", None, &[("tool", "search_logs")]),
        ];
        let t = traces(&batch, &info);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].len(), 2);
        let tool = &t[0][1];
        assert_eq!(tool.trace_id, 0xa3ce929d0e0e4736);
        assert_eq!(tool.name, "search_logs");
        assert_eq!(tool.resource, "nginx");
        assert_eq!(tool.service, "logai");
        assert_eq!(tool.parent_id, 0);
        assert_eq!(tool.duration, 1_500_000);
        assert_eq!(tool.start, 1_700_000_000_000_000_000);
        assert_eq!(tool.meta["env"], "test");
        assert_eq!(tool.meta["version"], "1.2.3");
        assert_eq!(tool.meta["_dd.p.tid"], "4bf92f3577b34da6");
        assert_eq!(t[0][0].parent_id, 0xb1);
        assert_eq!(t[0][0].metrics["files_matched"], 2.0);
        let bytes = encode(&t).unwrap();
        let back: Vec<Vec<serde_json::Value>> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back[0][1]["name"], "search_logs");
    }
}
