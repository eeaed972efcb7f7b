//! The `tracing` layer that turns spans of target [`SPAN_TARGET`] into
//! telemetry events, and gives every such span W3C ids (used by the JSON
//! log formatter for `dd.trace_id`/`dd.span_id`).
//!
//! - A span with no telemetry ancestor is a local root: its trace id comes
//!   from its `traceparent` field (W3C, the request's `_meta.traceparent`)
//!   when valid, else it is random; the remote parent becomes its parent id
//!   and the event carries `root=true`.
//! - Children inherit the trace id, and the attributes in [`INHERITED`].
//! - On close: a span event (fields as attributes, `status` from `outcome`);
//!   a `search` span slower than `telemetry.slow_search_ms` gets `slow=true`;
//!   a span with an `error` field also yields an error event (with the
//!   session's breadcrumbs); `tool.call` and `search` spans leave a breadcrumb.
//! - `error!` events from `logai*` targets yield error events too.

use std::fmt::Write as _;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::{global, now_ms, Event, EventKind, Telemetry, RELEASE, SPAN_TARGET};

/// Attributes children take from their ancestors (so a `search` span knows
/// its tool, session and user).
pub const INHERITED: &[&str] = &["tool", "plugin", "service", "session", "user", "client", "request_id"];

/// W3C ids of one telemetry span (in the span's extensions).
#[derive(Clone, Debug)]
pub struct SpanIds {
    pub trace_id: u128,
    pub span_id: u64,
    /// Parent span id (local, or the remote caller's for a root).
    pub parent_span_id: Option<u64>,
}

impl SpanIds {
    /// Datadog's 64-bit trace id: the lower 64 bits of the W3C id.
    pub fn dd_trace_id(&self) -> u64 {
        self.trace_id as u64
    }
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
    pub fn span_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
    /// `traceparent` to pass downstream.
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }
}

struct SpanData {
    ids: SpanIds,
    root: bool,
    start: Instant,
    start_ms: u64,
    fields: Vec<(&'static str, String)>,
    inherited: Vec<(&'static str, String)>,
}

impl SpanData {
    fn get(&self, k: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())
    }
    fn set(&mut self, k: &'static str, v: String) {
        if let Some(slot) = self.fields.iter_mut().find(|(n, _)| *n == k) {
            slot.1 = v;
        } else {
            self.fields.push((k, v));
        }
    }
}

struct Fields<'a>(&'a mut Vec<(&'static str, String)>);

impl Fields<'_> {
    fn put(&mut self, name: &'static str, v: String) {
        if let Some(slot) = self.0.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = v;
        } else {
            self.0.push((name, v));
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), value.to_string());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), value.to_string());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field.name(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field.name(), s);
    }
}

/// Parse a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); all-zero ids are invalid.
pub fn parse_traceparent(tp: &str) -> Option<(u128, u64)> {
    let parts: Vec<&str> = tp.trim().split('-').collect();
    if parts.len() < 4 || parts[0].len() != 2 || parts[1].len() != 32 || parts[2].len() != 16 || parts[0] == "ff" {
        return None;
    }
    let trace = u128::from_str_radix(parts[1], 16).ok()?;
    let span = u64::from_str_radix(parts[2], 16).ok()?;
    if trace == 0 || span == 0 {
        return None;
    }
    Some((trace, span))
}

fn random_nonzero_u64() -> u64 {
    loop {
        let v: u64 = rand::random();
        if v != 0 {
            return v;
        }
    }
}

/// Where the layer sends events.
#[derive(Clone)]
enum Target {
    Global,
    Fixed(Telemetry),
}

/// The layer. [`TelemetryLayer::global`] feeds whatever [`Telemetry::install`]
/// installed (`init_logging` adds it); [`TelemetryLayer::to`] one pipeline (tests).
#[derive(Clone)]
pub struct TelemetryLayer {
    target: Target,
}

impl TelemetryLayer {
    pub fn global() -> Self {
        TelemetryLayer { target: Target::Global }
    }
    pub fn to(t: Telemetry) -> Self {
        TelemetryLayer { target: Target::Fixed(t) }
    }
    fn telemetry(&self) -> Option<Telemetry> {
        match &self.target {
            Target::Global => global(),
            Target::Fixed(t) => Some(t.clone()),
        }
    }
}

/// The ids of the innermost telemetry span around the current point (for log correlation).
pub fn current_ids<S>(
    ctx: &tracing_subscriber::fmt::FmtContext<'_, S, impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static>,
) -> Option<SpanIds>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let scope = ctx.event_scope()?;
    for span in scope {
        if let Some(d) = span.extensions().get::<SpanData>() {
            return Some(d.ids.clone());
        }
    }
    None
}

impl<S> Layer<S> for TelemetryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().target() != SPAN_TARGET {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Vec::with_capacity(8);
        attrs.record(&mut Fields(&mut fields));
        // Nearest telemetry ancestor.
        let mut parent_info: Option<(SpanIds, Vec<(&'static str, String)>)> = None;
        if let Some(parent) = span.parent() {
            for anc in parent.scope() {
                if let Some(d) = anc.extensions().get::<SpanData>() {
                    let mut inherited = d.inherited.clone();
                    for (k, v) in &d.fields {
                        if INHERITED.contains(k) {
                            if let Some(slot) = inherited.iter_mut().find(|(n, _)| n == k) {
                                slot.1 = v.clone();
                            } else {
                                inherited.push((k, v.clone()));
                            }
                        }
                    }
                    parent_info = Some((d.ids.clone(), inherited));
                    break;
                }
            }
        }
        let (ids, root, inherited) = match parent_info {
            Some((p, inherited)) => {
                (SpanIds { trace_id: p.trace_id, span_id: random_nonzero_u64(), parent_span_id: Some(p.span_id) }, false, inherited)
            }
            None => {
                let remote = fields.iter().find(|(k, _)| *k == "traceparent").and_then(|(_, v)| parse_traceparent(v));
                let (trace_id, parent_span_id) = match remote {
                    Some((t, s)) => (t, Some(s)),
                    None => {
                        let mut t: u128 = rand::random();
                        if t == 0 {
                            t = 1;
                        }
                        (t, None)
                    }
                };
                (SpanIds { trace_id, span_id: random_nonzero_u64(), parent_span_id }, true, Vec::new())
            }
        };
        span.extensions_mut().insert(SpanData { ids, root, start: Instant::now(), start_ms: now_ms(), fields, inherited });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(d) = ext.get_mut::<SpanData>() {
            values.record(&mut Fields(&mut d.fields));
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::WARN || !meta.target().starts_with("logai") {
            return;
        }
        let Some(t) = self.telemetry() else { return };
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.iter().find(|(k, _)| *k == "message").map(|(_, v)| v.clone()).unwrap_or_default();
        if *meta.level() == Level::WARN {
            t.breadcrumb("log.warn", message);
            return;
        }
        if !t.is_enabled() {
            return;
        }
        // An error log: context from the innermost telemetry span.
        let mut attributes: Vec<(String, String)> = Vec::new();
        let mut ids = None;
        if let Some(scope) = ctx.event_span(event).map(|s| s.scope()) {
            for span in scope {
                if let Some(d) = span.extensions().get::<SpanData>() {
                    for (k, v) in d.inherited.iter().chain(d.fields.iter()) {
                        attributes.push((k.to_string(), v.clone()));
                    }
                    ids = Some(d.ids.clone());
                    break;
                }
            }
        }
        for (k, v) in &fields {
            if *k != "message" {
                attributes.push((k.to_string(), v.clone()));
            }
        }
        attributes.push(("target".into(), meta.target().to_string()));
        attributes.push(("release".into(), RELEASE.into()));
        let (trace_id, span_id, parent) = match ids {
            Some(i) => (i.trace_hex(), format!("{:016x}", random_nonzero_u64()), Some(i.span_hex())),
            None => (format!("{:032x}", rand::random::<u128>()), format!("{:016x}", random_nonzero_u64()), None),
        };
        let kind = fields.iter().find(|(k, _)| *k == "kind").map(|(_, v)| v.clone()).unwrap_or_else(|| "error".into());
        t.emit(Event {
            kind: EventKind::Error,
            timestamp_ms: now_ms(),
            name: kind.clone(),
            trace_id,
            span_id,
            parent_span_id: parent,
            duration_us: 0,
            status: kind,
            attributes: dedup(attributes),
            message: Some(message),
            breadcrumbs: t.breadcrumbs(),
            metric: None,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let mut ext = span.extensions_mut();
        let Some(mut d) = ext.remove::<SpanData>() else { return };
        drop(ext);
        let Some(t) = self.telemetry() else { return };
        let name = span.name();
        let duration_us = d.start.elapsed().as_micros() as u64;
        let error = d.get("error").map(str::to_string);
        let status = match d.get("outcome") {
            Some(o) if !o.is_empty() => o.to_string(),
            _ if error.is_some() => "error".to_string(),
            _ => "ok".to_string(),
        };
        if name == "search" && duration_us >= t.config().slow_search_ms.saturating_mul(1000) {
            d.set("slow", "true".into());
        }
        leave_breadcrumb(&t, name, &d, &status, duration_us);
        if !t.is_enabled() {
            return;
        }
        let attributes = span_attributes(&d);
        let trace_id = d.ids.trace_hex();
        let span_id = d.ids.span_hex();
        if let Some(err) = &error {
            t.emit(Event {
                kind: EventKind::Error,
                timestamp_ms: d.start_ms + duration_us / 1000,
                name: status.clone(),
                trace_id: trace_id.clone(),
                span_id: format!("{:016x}", random_nonzero_u64()),
                parent_span_id: Some(span_id.clone()),
                duration_us: 0,
                status: status.clone(),
                attributes: {
                    let mut a = attributes.clone();
                    a.push(("span".into(), name.to_string()));
                    a
                },
                message: Some(err.clone()),
                breadcrumbs: t.breadcrumbs(),
                metric: None,
            });
        }
        t.emit(Event {
            kind: EventKind::Span,
            timestamp_ms: d.start_ms,
            name: name.to_string(),
            trace_id,
            span_id,
            parent_span_id: d.ids.parent_span_id.map(|p| format!("{p:016x}")),
            duration_us,
            status,
            attributes,
            message: error,
            breadcrumbs: Vec::new(),
            metric: None,
        });
    }
}

/// Breadcrumbs of the session's steps: tool calls and searches.
fn leave_breadcrumb(t: &Telemetry, name: &str, d: &SpanData, status: &str, duration_us: u64) {
    match name {
        "tool.call" => t.breadcrumb("tool.call", format!("{} → {status} in {} ms", d.get("tool").unwrap_or("?"), duration_us / 1000)),
        "search" => t.breadcrumb(
            "search",
            format!(
                "search {} /{}/ {}→ {status}, {} results in {} ms",
                d.get("service").or_else(|| d.inherited.iter().find(|(k, _)| *k == "service").map(|(_, v)| v.as_str())).unwrap_or("?"),
                d.get("pattern").unwrap_or(""),
                d.get("window").map(|w| format!("[{w}] ")).unwrap_or_default(),
                d.get("result_count").unwrap_or("0"),
                duration_us / 1000
            ),
        ),
        _ => {}
    }
}

/// A closed span's attributes: inherited then its own fields (later values
/// win), without `traceparent`, plus `root` and `release`.
fn span_attributes(d: &SpanData) -> Vec<(String, String)> {
    let mut attributes: Vec<(String, String)> = Vec::with_capacity(d.inherited.len() + d.fields.len() + 2);
    for (k, v) in d.inherited.iter().chain(d.fields.iter()) {
        if *k == "traceparent" {
            continue;
        }
        attributes.push((k.to_string(), v.clone()));
    }
    if d.root {
        attributes.push(("root".into(), "true".into()));
    }
    attributes.push(("release".into(), RELEASE.into()));
    dedup(attributes)
}

/// Later values win; first position kept.
fn dedup(attrs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(attrs.len());
    for (k, v) in attrs {
        if let Some(slot) = out.iter_mut().find(|(n, _)| *n == k) {
            slot.1 = v;
        } else {
            out.push((k, v));
        }
    }
    out
}
