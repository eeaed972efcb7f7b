//! The telemetry event as plain Rust: the WIT `telemetry-types` records,
//! defined once in `logai-records` (the host builds the same types), so the
//! mapping logic is unit-tested on the host target.

pub use logai_records::metrics::MetricsSnapshot;
pub use logai_records::telemetry::{Breadcrumb as Crumb, Event, EventKind as Kind, MetricKind, MetricPoint};

/// A setting that may be written as a string (from `${VAR}` expansion) or a number.
pub fn setting_str(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
