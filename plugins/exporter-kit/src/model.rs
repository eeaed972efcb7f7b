//! The telemetry event as plain Rust (mirrors WIT `telemetry-types`), so the
//! mapping logic is unit-tested on the host target.

/// What an [`Event`] reports (WIT `event-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A finished span (tool call, plugin call, search, cache, permit, scan).
    Span,
    /// An error with context.
    Error,
    /// A metric observation (counter increment, gauge value or histogram sample).
    Metric,
}

/// The type of a [`MetricPoint`] (WIT `metric-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// An increment of a monotonic count.
    Counter,
    /// A current value.
    Gauge,
    /// One sample of a distribution.
    Histogram,
}

#[derive(Clone, Debug, PartialEq)]
/// One metric observation (WIT `metric-point`).
pub struct MetricPoint {
    /// The metric's name.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The increment, value or sample.
    pub value: f64,
    /// Labels, name then value.
    pub tags: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
/// One telemetry event (WIT `telemetry-event`).
pub struct Event {
    /// Span, error or metric.
    pub kind: Kind,
    /// Unix time in milliseconds when the event started.
    pub timestamp_ms: u64,
    /// Span or error name (e.g. `tools/call`, `search_logs`, `search`).
    pub name: String,
    /// 128-bit W3C trace id, 32 hex chars.
    pub trace_id: String,
    /// 64-bit span id, 16 hex chars.
    pub span_id: String,
    /// The parent span's id, 16 hex chars; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// How long the span took, in microseconds.
    pub duration_us: u64,
    /// `ok` or an error kind.
    pub status: String,
    /// Tags: service, tool, cached, session, user, release, ...
    pub attributes: Vec<(String, String)>,
    /// Error message, for error events.
    pub message: Option<String>,
    /// Recent session steps, for error events.
    pub breadcrumbs: Vec<Crumb>,
    /// Set for metric events.
    pub metric: Option<MetricPoint>,
}

#[derive(Clone, Debug, PartialEq)]
/// One recent session step (WIT `breadcrumb`).
pub struct Crumb {
    /// Unix time in milliseconds.
    pub timestamp_ms: u64,
    /// The step's kind (e.g. `tool.call`, `search`).
    pub category: String,
    /// What happened.
    pub message: String,
}

impl Event {
    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// Whether attribute `name` is `true` or `1`.
    pub fn attr_bool(&self, name: &str) -> bool {
        matches!(self.attr(name), Some("true") | Some("1"))
    }
    /// Attribute `name` as a number, if present and numeric.
    pub fn attr_f64(&self, name: &str) -> Option<f64> {
        self.attr(name).and_then(|v| v.parse().ok())
    }
    /// Whether the status is `ok` (or empty).
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
