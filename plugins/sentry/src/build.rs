//! Sentry envelopes from telemetry events: error events for `error` events,
//! transactions (with their child spans) for tool calls.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentry_types::protocol::v7::{
    Breadcrumb, ClientSdkInfo, Context, Event as SentryEvent, Exception, Level, Map, Span, SpanId, SpanStatus, TraceContext, TraceId,
    Transaction, User, Values,
};
use sentry_types::protocol::v7::{Envelope, EnvelopeHeaders};
use sentry_types::Dsn;

use crate::model::{Event, Kind};

/// Tags copied from event attributes onto Sentry events and transactions.
pub const TAG_KEYS: &[&str] = &["service", "tool", "cached", "session", "slow", "plugin", "client", "outcome", "method"];

#[derive(Clone, Debug)]
pub struct Settings {
    pub dsn: Dsn,
    pub environment: String,
    /// Overrides the events' `release` attribute when set.
    pub release: Option<String>,
    pub traces_sample_rate: f64,
    pub server_name: Option<String>,
}

fn ts(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn sdk() -> ClientSdkInfo {
    ClientSdkInfo {
        name: "logai.exporter.sentry".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        integrations: vec![],
        packages: vec![],
    }
}

pub fn span_status(status: &str) -> SpanStatus {
    match status.to_ascii_lowercase().replace('-', "_").as_str() {
        "" | "ok" => SpanStatus::Ok,
        "invalid_request" | "invalid_arguments" | "invalid_argument" => SpanStatus::InvalidArgument,
        "forbidden" => SpanStatus::PermissionDenied,
        "rate_limited" | "busy" => SpanStatus::ResourceExhausted,
        "not_found" | "unknown_tool" => SpanStatus::NotFound,
        "cancelled" => SpanStatus::Cancelled,
        "timeout" | "deadline_exceeded" => SpanStatus::DeadlineExceeded,
        "unavailable" => SpanStatus::Unavailable,
        _ => SpanStatus::InternalError,
    }
}

/// `user@addr` (addr maybe `[v6]` or with a port) → Sentry user.
pub fn user_of(s: &str) -> Option<User> {
    if s.is_empty() {
        return None;
    }
    let (name, addr) = match s.rsplit_once('@') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    };
    let ip = addr.and_then(|a| {
        let a = a.trim_start_matches('[');
        let a = a.split(']').next().unwrap_or(a);
        a.parse::<std::net::IpAddr>().ok().or_else(|| a.rsplit_once(':').and_then(|(h, _)| h.parse().ok()))
    });
    Some(User {
        username: if name.is_empty() { None } else { Some(name.to_string()) },
        ip_address: ip.map(Into::into),
        ..Default::default()
    })
}

fn tags_of(e: &Event) -> Map<String, String> {
    let mut tags = Map::new();
    for k in TAG_KEYS {
        if let Some(v) = e.attr(k) {
            if !v.is_empty() {
                tags.insert(k.to_string(), v.to_string());
            }
        }
    }
    tags
}

fn release_of(settings: &Settings, e: &Event) -> Option<Cow<'static, str>> {
    settings.release.clone().or_else(|| e.attr("release").map(str::to_string)).map(Cow::Owned)
}

fn trace_context(e: &Event, op: &str) -> TraceContext {
    TraceContext {
        span_id: e.span_id.parse().unwrap_or_default(),
        trace_id: e.trace_id.parse().unwrap_or_default(),
        parent_span_id: e.parent_span_id.as_deref().and_then(|p| p.parse::<SpanId>().ok()),
        op: Some(op.to_string()),
        status: Some(span_status(&e.status)),
        ..Default::default()
    }
}

/// An error event.
pub fn error_event(settings: &Settings, e: &Event) -> SentryEvent<'static> {
    let message = e.message.clone().or_else(|| e.attr("error").map(str::to_string)).unwrap_or_else(|| e.name.clone());
    let mut extra = Map::new();
    for (k, v) in &e.attributes {
        if !TAG_KEYS.contains(&k.as_str()) && k != "user" && k != "release" {
            extra.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    let mut contexts = Map::new();
    contexts.insert("trace".to_string(), Context::Trace(Box::new(trace_context(e, &e.name))));
    let ty = if e.status.is_empty() || e.status == "ok" { "error".to_string() } else { e.status.clone() };
    SentryEvent {
        level: Level::Error,
        timestamp: ts(e.timestamp_ms),
        message: Some(message.clone()),
        logger: Some("logai".into()),
        transaction: e.attr("tool").map(str::to_string),
        exception: Values {
            values: vec![Exception { ty, value: Some(message), module: e.attr("service").map(str::to_string), ..Default::default() }],
        },
        tags: tags_of(e),
        extra,
        user: e.attr("user").and_then(user_of),
        release: release_of(settings, e),
        environment: Some(Cow::Owned(settings.environment.clone())),
        server_name: settings.server_name.clone().map(Cow::Owned),
        breadcrumbs: Values {
            values: e
                .breadcrumbs
                .iter()
                .map(|b| Breadcrumb {
                    timestamp: ts(b.timestamp_ms),
                    category: Some(b.category.clone()),
                    message: Some(b.message.clone()),
                    ..Default::default()
                })
                .collect(),
        },
        contexts,
        sdk: Some(Cow::Owned(sdk())),
        platform: Cow::Borrowed("native"),
        ..Default::default()
    }
}

fn is_local_root(e: &Event) -> bool {
    e.parent_span_id.is_none() || e.attr_bool("root")
}

/// Deterministic per trace: the same trace is kept or dropped everywhere.
pub fn sampled(trace_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let low = u64::from_str_radix(&trace_id[trace_id.len().saturating_sub(13)..], 16).unwrap_or(0);
    (low as f64 / (1u64 << 52) as f64) < rate
}

/// A transaction from the spans of one trace. `spans` holds every span of
/// the trace seen so far, the local root among them. None unless the trace
/// has a `tool.call` span (transactions are for tool calls).
pub fn transaction(settings: &Settings, spans: &[Event], slow_ms: Option<u64>) -> Option<Transaction<'static>> {
    let root = spans.iter().find(|e| is_local_root(e))?;
    let tool = spans.iter().find(|e| e.name == "tool.call")?;
    let tool_name = tool.attr("tool").unwrap_or("tool.call").to_string();
    let mut tags = tags_of(root);
    for (k, v) in tags_of(tool) {
        tags.entry(k).or_insert(v);
    }
    let mut slow = false;
    let mut child_spans = Vec::new();
    for s in spans.iter().filter(|s| s.span_id != root.span_id) {
        let mut stags = tags_of(s);
        let is_slow = s.attr_bool("slow") || (s.name == "search" && slow_ms.is_some_and(|t| s.duration_us >= t * 1000));
        if is_slow {
            slow = true;
            stags.insert("slow".into(), "true".into());
        }
        // Fill transaction tags from inner spans (service, cached come from the search).
        for k in ["service", "cached", "tool"] {
            if let Some(v) = s.attr(k) {
                tags.entry(k.to_string()).or_insert_with(|| v.to_string());
            }
        }
        let mut data = Map::new();
        for (k, v) in &s.attributes {
            if !TAG_KEYS.contains(&k.as_str()) && k != "user" && k != "release" && k != "root" {
                data.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
        }
        child_spans.push(Span {
            span_id: s.span_id.parse().unwrap_or_default(),
            trace_id: s.trace_id.parse::<TraceId>().unwrap_or_default(),
            parent_span_id: s.parent_span_id.as_deref().and_then(|p| p.parse().ok()),
            same_process_as_parent: Some(true),
            op: Some(if is_slow && s.name == "search" { "search.slow".to_string() } else { s.name.clone() }),
            description: Some(describe(s)),
            start_timestamp: ts(s.timestamp_ms),
            timestamp: Some(ts(s.timestamp_ms) + Duration::from_micros(s.duration_us)),
            status: Some(span_status(&s.status)),
            tags: stags,
            data,
        });
    }
    if slow {
        tags.insert("slow".into(), "true".into());
    }
    // The transaction takes the tool call's outcome when the root says ok.
    let status_src = if root.is_ok() { tool } else { root };
    let mut tc = trace_context(root, if root.name == "mcp.request" { "mcp.server" } else { &root.name });
    tc.status = Some(span_status(&status_src.status));
    tc.description = Some(format!("tools/call {tool_name}"));
    let mut contexts = Map::new();
    contexts.insert("trace".to_string(), Context::Trace(Box::new(tc)));
    let user = root.attr("user").or_else(|| tool.attr("user")).and_then(user_of);
    Some(Transaction {
        name: Some(tool_name),
        release: release_of(settings, root),
        environment: Some(Cow::Owned(settings.environment.clone())),
        user,
        tags,
        sdk: Some(Cow::Owned(sdk())),
        platform: Cow::Borrowed("native"),
        timestamp: Some(ts(root.timestamp_ms) + Duration::from_micros(root.duration_us)),
        start_timestamp: ts(root.timestamp_ms),
        spans: child_spans,
        contexts,
        server_name: settings.server_name.clone().map(Cow::Owned),
        ..Default::default()
    })
}

fn describe(s: &Event) -> String {
    match s.name.as_str() {
        "search" => format!("search {} /{}/", s.attr("service").unwrap_or("?"), s.attr("pattern").unwrap_or("")),
        "redis" => format!("redis {}", s.attr("op").unwrap_or("?")),
        "tool.call" => format!("tool {}", s.attr("tool").unwrap_or("?")),
        "plugin.call" => format!("plugin {}", s.attr("plugin").unwrap_or("?")),
        other => other.to_string(),
    }
}

/// One envelope per event, as Sentry requires.
pub fn envelope_for_event(settings: &Settings, ev: SentryEvent<'static>) -> Vec<u8> {
    let headers =
        EnvelopeHeaders::new().with_event_id(ev.event_id).with_dsn(settings.dsn.clone()).with_sent_at(SystemTime::now()).with_sdk(sdk());
    let mut env = Envelope::new().with_headers(headers);
    env.add_item(ev);
    let mut buf = Vec::new();
    env.to_writer(&mut buf).expect("writing to a Vec cannot fail");
    buf
}

/// One envelope per transaction. Every timestamp in it (`start_timestamp`
/// and `timestamp`, of the transaction and of each span) is one form: Unix
/// seconds as a float (the protocol types write the end as an RFC 3339 string).
pub fn envelope_for_transaction(settings: &Settings, tx: Transaction<'static>) -> Vec<u8> {
    let end = tx.timestamp.map(unix_seconds);
    let span_ends: Vec<Option<f64>> = tx.spans.iter().map(|s| s.timestamp.map(unix_seconds)).collect();
    let headers =
        EnvelopeHeaders::new().with_event_id(tx.event_id).with_dsn(settings.dsn.clone()).with_sent_at(SystemTime::now()).with_sdk(sdk());
    let mut env = Envelope::new().with_headers(headers);
    env.add_item(tx);
    let mut buf = Vec::new();
    env.to_writer(&mut buf).expect("writing to a Vec cannot fail");
    rewrite_payload(&buf, |payload| {
        if let Some(end) = end {
            payload["timestamp"] = serde_json::json!(end);
        }
        if let Some(spans) = payload.get_mut("spans").and_then(|s| s.as_array_mut()) {
            for (span, end) in spans.iter_mut().zip(&span_ends) {
                if let Some(end) = end {
                    span["timestamp"] = serde_json::json!(end);
                }
            }
        }
    })
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Microseconds, as the protocol types write `start_timestamp`.
    (d.as_micros() as f64) / 1e6
}

/// An envelope of one item (`headers\nitem headers\npayload`) with its
/// payload changed by `edit` (the item's `length` follows).
fn rewrite_payload(envelope: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut parts = envelope.splitn(3, |b| *b == b'\n');
    let (Some(headers), Some(item), Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
        return envelope.to_vec();
    };
    let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
    let (Ok(mut item), Ok(mut body)) =
        (serde_json::from_slice::<serde_json::Value>(item), serde_json::from_slice::<serde_json::Value>(payload))
    else {
        return envelope.to_vec();
    };
    edit(&mut body);
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    item["length"] = serde_json::json!(body.len());
    let mut out = headers.to_vec();
    out.push(b'\n');
    out.extend_from_slice(&serde_json::to_vec(&item).expect("a JSON value serializes"));
    out.push(b'\n');
    out.extend_from_slice(&body);
    out.push(b'\n');
    out
}

/// Spans wait here until their trace's local root closes. Bounded: the
/// oldest trace is dropped (and counted) when too many are open.
#[derive(Default)]
pub struct Pending {
    traces: HashMap<String, Vec<Event>>,
    order: VecDeque<String>,
    pub dropped_traces: u64,
    /// `dropped_traces` already sent in a client report.
    reported_traces: u64,
}

pub const MAX_OPEN_TRACES: usize = 1024;
pub const MAX_SPANS_PER_TRACE: usize = 512;

impl Pending {
    /// Add a span; when it closes its trace, return the trace's spans.
    pub fn push(&mut self, e: Event) -> Option<Vec<Event>> {
        let root = is_local_root(&e);
        let tid = e.trace_id.clone();
        if !self.traces.contains_key(&tid) {
            if self.traces.len() >= MAX_OPEN_TRACES {
                if let Some(old) = self.order.pop_front() {
                    self.traces.remove(&old);
                    self.dropped_traces += 1;
                }
            }
            self.order.push_back(tid.clone());
        }
        let spans = self.traces.entry(tid.clone()).or_default();
        if spans.len() < MAX_SPANS_PER_TRACE {
            spans.push(e);
        }
        if root {
            self.order.retain(|t| t != &tid);
            return self.traces.remove(&tid);
        }
        None
    }

    pub fn open_traces(&self) -> usize {
        self.traces.len()
    }
}

/// What one batch turns into: envelopes, the last a client report when
/// events were discarded (by the host, or here by sampling or overflow).
pub fn process(settings: &Settings, pending: &mut Pending, batch: Vec<Event>, slow_ms: Option<u64>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut discarded = Discarded::default();
    for e in batch {
        match e.kind {
            Kind::Error => out.push(envelope_for_event(settings, error_event(settings, &e))),
            Kind::Span => {
                if let Some(spans) = pending.push(e) {
                    let tid = spans[0].trace_id.clone();
                    let tx = transaction(settings, &spans, slow_ms);
                    match (tx, sampled(&tid, settings.traces_sample_rate)) {
                        (Some(tx), true) => out.push(envelope_for_transaction(settings, tx)),
                        (Some(_), false) => discarded.add("sample_rate", "transaction", 1),
                        (None, _) => {}
                    }
                }
            }
            Kind::Metric => discarded.add_host_report(&e),
        }
    }
    if pending.dropped_traces > pending.reported_traces {
        discarded.add("cache_overflow", "transaction", pending.dropped_traces - pending.reported_traces);
        pending.reported_traces = pending.dropped_traces;
    }
    if let Some(report) = discarded.envelope(settings) {
        out.push(report);
    }
    out
}

/// Name of the host's metric event that reports dropped events (see the
/// host's `telemetry::drops`): tags `reason` and `kind`.
pub const HOST_DROPPED: &str = "telemetry.dropped";

/// Discarded events in Sentry's client-report terms: (reason, category) → quantity.
#[derive(Default)]
pub struct Discarded(Vec<(&'static str, &'static str, u64)>);

impl Discarded {
    pub fn add(&mut self, reason: &'static str, category: &'static str, n: u64) {
        match self.0.iter_mut().find(|(r, c, _)| *r == reason && *c == category) {
            Some(slot) => slot.2 += n,
            None => self.0.push((reason, category, n)),
        }
    }

    /// A host report: its reason as Sentry's (a full queue or a busy lane
    /// is a queue overflow, a failed send a network error), its kind of
    /// event as the category (metrics are not sent to Sentry: not counted).
    pub fn add_host_report(&mut self, e: &Event) {
        let Some(m) = e.metric.as_ref().filter(|m| m.name == HOST_DROPPED) else { return };
        let tag = |k: &str| m.tags.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let reason = match tag("reason") {
            Some("queue_full") | Some("exporter_busy") => "queue_overflow",
            Some("export_failed") => "network_error",
            _ => "internal_sdk_error",
        };
        let category = match tag("kind") {
            Some("span") => "span",
            Some("error") => "error",
            _ => return,
        };
        if m.value >= 1.0 {
            self.add(reason, category, m.value as u64);
        }
    }

    /// A `client_report` envelope, or `None` when nothing was discarded.
    pub fn envelope(&self, settings: &Settings) -> Option<Vec<u8>> {
        if self.0.is_empty() {
            return None;
        }
        let events: Vec<serde_json::Value> =
            self.0.iter().map(|(r, c, n)| serde_json::json!({"reason": r, "category": c, "quantity": n})).collect();
        let body = serde_json::to_vec(&serde_json::json!({
            "timestamp": unix_seconds(SystemTime::now()),
            "discarded_events": events,
        }))
        .expect("a JSON value serializes");
        let mut out = serde_json::to_vec(&serde_json::json!({"dsn": settings.dsn.to_string(), "sdk": sdk()})).expect("serializes");
        out.push(b'\n');
        out.extend_from_slice(
            &serde_json::to_vec(&serde_json::json!({"type": "client_report", "length": body.len()})).expect("serializes"),
        );
        out.push(b'\n');
        out.extend_from_slice(&body);
        out.push(b'\n');
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Crumb;

    fn settings() -> Settings {
        Settings {
            dsn: "http://abc123@127.0.0.1:8969/42".parse().unwrap(),
            environment: "test".into(),
            release: None,
            traces_sample_rate: 1.0,
            server_name: None,
        }
    }

    fn ev(kind: Kind, name: &str, span: &str, parent: Option<&str>, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind,
            timestamp_ms: 1_700_000_000_000,
            name: name.into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: span.into(),
            parent_span_id: parent.map(str::to_string),
            duration_us: 6_000_000,
            status: "ok".into(),
            attributes: attrs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            message: None,
            breadcrumbs: vec![],
            metric: None,
        }
    }

    #[test]
    fn error_event_has_tags_user_release_breadcrumbs() {
        let mut e = ev(
            Kind::Error,
            "invalid_request",
            "00000000000000c1",
            Some("00000000000000b1"),
            &[
                ("service", "nginx"),
                ("tool", "search_logs"),
                ("session", "s-1"),
                ("user", "alice@10.1.2.3"),
                ("release", "logai@0.1.0"),
                ("pattern", "(unclosed"),
            ],
        );
        e.status = "invalid_request".into();
        e.message = Some("bad regex".into());
        e.breadcrumbs = vec![Crumb { timestamp_ms: 1, category: "tool.call".into(), message: "list_services".into() }];
        let env = envelope_for_event(&settings(), error_event(&settings(), &e));
        let text = String::from_utf8(env).unwrap();
        let mut lines = text.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert!(header["event_id"].is_string());
        let item_header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(item_header["type"], "event");
        let body: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(body["tags"]["service"], "nginx");
        assert_eq!(body["tags"]["tool"], "search_logs");
        assert_eq!(body["user"]["username"], "alice");
        assert_eq!(body["user"]["ip_address"], "10.1.2.3");
        assert_eq!(body["release"], "logai@0.1.0");
        assert_eq!(body["environment"], "test");
        assert_eq!(body["breadcrumbs"]["values"][0]["message"], "list_services");
        assert_eq!(body["exception"]["values"][0]["type"], "invalid_request");
        assert_eq!(body["contexts"]["trace"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(body["extra"]["pattern"], "(unclosed");
    }

    #[test]
    fn transaction_waits_for_root_and_marks_slow() {
        let s = settings();
        let mut p = Pending::default();
        let out = process(
            &s,
            &mut p,
            vec![
                ev(
                    Kind::Span,
                    "search",
                    "00000000000000c1",
                    Some("00000000000000b2"),
                    &[("service", "nginx"), ("cached", "false"), ("slow", "true")],
                ),
                ev(Kind::Span, "tool.call", "00000000000000b2", Some("00000000000000b1"), &[("tool", "search_logs")]),
            ],
            Some(5000),
        );
        assert!(out.is_empty());
        assert_eq!(p.open_traces(), 1);
        let out = process(
            &s,
            &mut p,
            vec![ev(
                Kind::Span,
                "mcp.request",
                "00000000000000b1",
                None,
                &[("user", "bob@[::1]:22"), ("session", "s-2"), ("release", "logai@0.1.0")],
            )],
            Some(5000),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(p.open_traces(), 0);
        let text = String::from_utf8(out[0].clone()).unwrap();
        let body: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        let item_header: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(item_header["type"], "transaction");
        assert_eq!(body["transaction"], "search_logs");
        assert_eq!(body["tags"]["slow"], "true");
        assert_eq!(body["tags"]["service"], "nginx");
        assert_eq!(body["tags"]["session"], "s-2");
        assert_eq!(body["user"]["username"], "bob");
        assert_eq!(body["user"]["ip_address"], "::1");
        assert_eq!(body["spans"].as_array().unwrap().len(), 2);
        assert!(body["spans"].as_array().unwrap().iter().any(|s| s["op"] == "search.slow"));
        // One timestamp form: seconds as floats, the end after the start.
        for t in std::iter::once(&body).chain(body["spans"].as_array().unwrap()) {
            let (start, end) = (t["start_timestamp"].as_f64(), t["timestamp"].as_f64());
            assert!(start.is_some() && end.is_some(), "{t}");
            assert!((end.unwrap() - start.unwrap() - 6.0).abs() < 1e-3, "{t}");
        }
        assert_eq!(item_header["length"].as_u64().unwrap() as usize, text.lines().nth(2).unwrap().len());
    }

    #[test]
    fn host_drops_and_sampled_out_transactions_become_one_client_report() {
        let mut s = settings();
        s.traces_sample_rate = 0.0;
        let mut dropped = ev(Kind::Metric, "telemetry.dropped", "", None, &[]);
        dropped.metric = Some(crate::model::MetricPoint {
            name: HOST_DROPPED.into(),
            kind: crate::model::MetricKind::Counter,
            value: 3.0,
            tags: vec![("reason".into(), "queue_full".into()), ("kind".into(), "span".into())],
        });
        let root = ev(Kind::Span, "tool.call", "00000000000000b1", None, &[("tool", "search_logs")]);
        let out = process(&s, &mut Pending::default(), vec![dropped, root], None);
        assert_eq!(out.len(), 1, "only the report: the transaction is sampled out");
        let text = String::from_utf8(out[0].clone()).unwrap();
        let item: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        let body: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        assert_eq!(item["type"], "client_report");
        assert_eq!(
            body["discarded_events"],
            serde_json::json!([
                {"reason": "queue_overflow", "category": "span", "quantity": 3},
                {"reason": "sample_rate", "category": "transaction", "quantity": 1},
            ])
        );
        assert!(body["timestamp"].is_f64());
    }

    #[test]
    fn sampling_is_deterministic() {
        assert!(sampled("4bf92f3577b34da6a3ce929d0e0e4736", 1.0));
        assert!(!sampled("4bf92f3577b34da6a3ce929d0e0e4736", 0.0));
        let kept = (0..1000u64).filter(|i| sampled(&format!("{:032x}", i.wrapping_mul(0x9E3779B97F4A7C15)), 0.25)).count();
        assert!((150..350).contains(&kept), "{kept}");
    }
}
