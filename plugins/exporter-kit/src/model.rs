//! The telemetry event as plain Rust (mirrors WIT `telemetry-types`), so the
//! mapping logic is unit-tested on the host target.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Span,
    Error,
    Metric,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    pub name: String,
    pub kind: MetricKind,
    pub value: f64,
    pub tags: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub timestamp_ms: u64,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub duration_us: u64,
    pub status: String,
    pub attributes: Vec<(String, String)>,
    pub message: Option<String>,
    pub breadcrumbs: Vec<Crumb>,
    pub metric: Option<MetricPoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Crumb {
    pub timestamp_ms: u64,
    pub category: String,
    pub message: String,
}

impl Event {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn attr_bool(&self, name: &str) -> bool {
        matches!(self.attr(name), Some("true") | Some("1"))
    }
    pub fn attr_f64(&self, name: &str) -> Option<f64> {
        self.attr(name).and_then(|v| v.parse().ok())
    }
    pub fn is_ok(&self) -> bool {
        self.status.is_empty() || self.status == "ok"
    }
}

/// A setting that may be written as a string (from `${VAR}` expansion) or a number.
pub fn setting_str(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
