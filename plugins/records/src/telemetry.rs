//! WIT interface `telemetry-types`: the events the host hands exporters.

use serde::{Deserialize, Serialize};

use crate::metrics::Labels;
use crate::{choice, record};

choice! { $ __event_kind: telemetry = EventKind;
    /// What kind of telemetry event.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum EventKind {
        /// A finished span (tool call, plugin call, search, cache, permit, scan).
        Span,
        /// An error with context.
        Error,
        /// A metric observation.
        Metric,
    }
}

choice! { $ __metric_kind: telemetry = MetricKind;
    /// What kind of metric a [`MetricPoint`] is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum MetricKind {
        /// A count to add to a running total.
        Counter,
        /// A value that replaces the last one.
        Gauge,
        /// One observation for a distribution.
        Histogram,
    }
}

record! { $ __metric_point: telemetry = MetricPoint;
    /// One metric observation (counter increment, gauge value or histogram sample).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct MetricPoint {
        /// Metric name (`coord::names`).
        pub name: String,
        /// Counter, gauge or histogram.
        pub kind: MetricKind,
        /// The increment, value or sample.
        pub value: f64,
        /// Tags (service, tool, env, ...).
        pub tags: Labels,
    }
}

record! { $ __breadcrumb: telemetry = Breadcrumb;
    /// A recent session step, for error events.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Breadcrumb {
        /// Unix time in milliseconds.
        pub timestamp_ms: u64,
        /// What kind of step (`tools/call`, `search`, ...).
        pub category: String,
        /// What happened.
        pub message: String,
    }
}

record! { $ __event: telemetry = TelemetryEvent;
    /// One telemetry event.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Event {
        /// Span, error or metric.
        pub kind: EventKind,
        /// Unix time in milliseconds when the event started.
        pub timestamp_ms: u64,
        /// Span or error name (`tools/call`, `search_logs`, `search`, ...).
        pub name: String,
        /// 128-bit W3C trace id, 32 hex chars.
        pub trace_id: String,
        /// 64-bit span id, 16 hex chars.
        pub span_id: String,
        /// The parent span's id; none for a trace's root.
        pub parent_span_id: Option<String>,
        /// Span duration in microseconds.
        pub duration_us: u64,
        /// `ok` or an error kind.
        pub status: String,
        /// Tags: service, tool, cached, session, user, release, ...
        pub attributes: Labels,
        /// Error message, for error events.
        pub message: Option<String>,
        /// Recent session steps, for error events.
        pub breadcrumbs: Vec<Breadcrumb>,
        /// Set for metric events.
        pub metric: Option<MetricPoint>,
    }
}

impl Event {
    /// The value of attribute `name`, if set.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// Attribute `name` is `true` or `1`.
    pub fn attr_bool(&self, name: &str) -> bool {
        matches!(self.attr(name), Some("true") | Some("1"))
    }
    /// Attribute `name` as a number, when it is one.
    pub fn attr_f64(&self, name: &str) -> Option<f64> {
        self.attr(name).and_then(|v| v.parse().ok())
    }
    /// The status says success (`ok`, or unset).
    pub fn is_ok(&self) -> bool {
        self.status.is_empty() || self.status == "ok"
    }
}
