//! Unit tests of the pipeline (batching, bounded queue, drops, shutdown),
//! the tracing layer (ids, traceparent, inheritance, slow, errors,
//! breadcrumbs), JSON logs (dd ids) and the metrics server. Sinks here are
//! in-process collectors: the pipeline's contract is with `ExportSink`; the
//! real components and receivers are exercised in `components_tests`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

#[derive(Default)]
struct Collect {
    batches: Mutex<Vec<Vec<Event>>>,
    flushed: AtomicUsize,
    /// Each export sleeps this long (a slow receiver).
    delay: Duration,
}

struct CollectSink(Arc<Collect>);

impl ExportSink for CollectSink {
    fn name(&self) -> &str {
        "collect"
    }
    fn export(&self, batch: Arc<Vec<Event>>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !self.0.delay.is_zero() {
                tokio::time::sleep(self.0.delay).await;
            }
            self.0.batches.lock().push(batch.as_ref().clone());
            Ok(())
        })
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), String>> {
        self.0.flushed.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

fn cfg(capacity: usize, batch: usize, interval_ms: u64) -> TelemetryConfig {
    TelemetryConfig {
        queue_capacity: capacity,
        batch_size: batch,
        batch_interval_ms: interval_ms,
        slow_search_ms: 50,
        flush_timeout_ms: 2000,
    }
}

fn ev(i: u64) -> Event {
    Event {
        kind: EventKind::Metric,
        timestamp_ms: i,
        name: format!("m{i}"),
        trace_id: String::new(),
        span_id: String::new(),
        parent_span_id: None,
        duration_us: 0,
        status: "ok".into(),
        attributes: vec![],
        message: None,
        breadcrumbs: vec![],
        metric: None,
    }
}

#[tokio::test]
async fn batches_by_size_then_by_time_and_flushes_on_shutdown() {
    let c = Arc::new(Collect::default());
    let t = Telemetry::start(&cfg(100, 10, 200), vec![Arc::new(CollectSink(c.clone()))], None);
    for i in 0..25 {
        t.emit(ev(i));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Two full batches went at once; the rest waits for the interval.
    assert_eq!(c.batches.lock().iter().map(|b| b.len()).collect::<Vec<_>>(), vec![10, 10]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.batches.lock().iter().map(|b| b.len()).collect::<Vec<_>>(), vec![10, 10, 5]);
    for i in 0..3 {
        t.emit(ev(100 + i));
    }
    t.shutdown(Instant::now() + Duration::from_secs(2)).await;
    let all: Vec<u64> = c.batches.lock().iter().flatten().map(|e| e.timestamp_ms).collect();
    assert_eq!(all.len(), 28, "shutdown exports what is queued");
    assert_eq!(c.flushed.load(Ordering::SeqCst), 1);
    assert_eq!(t.stats().exporters[0].exported_events, 28);
}

#[tokio::test]
async fn events_emitted_while_exporters_load_are_exported_once_they_are_up() {
    // A cold exporter compiles for a second or more; the session's first
    // calls happen meanwhile and must not be lost (CI saw exactly this).
    let c = Arc::new(Collect::default());
    let sink: Arc<dyn ExportSink> = Arc::new(CollectSink(c.clone()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let t = Telemetry::start_loading(
        &cfg(100, 10, 10),
        vec!["collect".into(), "broken".into()],
        Box::pin(async move {
            let _ = ready_rx.await;
            (vec![sink], None)
        }),
    );
    assert!(t.is_enabled(), "events are built from the start");
    for i in 0..5 {
        t.emit(ev(i));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(c.batches.lock().is_empty(), "nothing can be exported before the exporter is up");
    ready_tx.send(()).unwrap();
    t.shutdown(Instant::now() + Duration::from_secs(2)).await;
    let all: Vec<u64> = c.batches.lock().iter().flatten().map(|e| e.timestamp_ms).collect();
    assert_eq!(all, (0..5).collect::<Vec<_>>());
    let s = t.stats();
    assert_eq!(
        s.exporters.iter().map(|e| (e.name.as_str(), e.exported_events, e.dropped_events)).collect::<Vec<_>>(),
        vec![("collect", 5, 0), ("broken", 0, 5)],
        "the exporter that did not load counts its share as dropped"
    );
}

#[tokio::test]
async fn shutdown_gives_up_on_an_exporter_that_never_loads() {
    let metrics = crate::coord::Metrics::new();
    let t = Telemetry::start_loading(&cfg(100, 10, 10), vec!["stuck".into()], Box::pin(std::future::pending()));
    t.count_drops_in(metrics.clone());
    t.emit(ev(1));
    t.emit(ev(2));
    let t0 = Instant::now();
    t.shutdown(Instant::now() + Duration::from_millis(200)).await;
    // The exporter never loads: waiting for it would never end.
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    // What the session queued is lost to it, and counted so.
    assert_eq!(t.stats().exporters[0].dropped_events, 2, "{:?}", t.stats());
    let dropped = metrics.local_counter(crate::coord::names::TELEMETRY_DROPPED_TOTAL, &[("reason", "not_loaded"), ("exporter", "stuck")]);
    assert_eq!(dropped, 2.0);
}

#[tokio::test]
async fn full_queue_drops_and_counts_without_blocking() {
    let c = Arc::new(Collect { delay: Duration::from_secs(120), ..Default::default() });
    let metrics = crate::coord::Metrics::new();
    let t = Telemetry::start(&cfg(8, 4, 10), vec![Arc::new(CollectSink(c.clone()))], Some(metrics.clone()));
    let t0 = Instant::now();
    for i in 0..10_000 {
        t.emit(ev(i));
    }
    let took = t0.elapsed();
    // Blocking on the 120 s exporter would take days for 10,000 events.
    assert!(took < Duration::from_secs(30), "emit must never block (took {took:?})");
    let s = t.stats();
    assert!(s.dropped_queue_full > 9_000, "{s:?}");
    assert_eq!(s.queued + s.dropped_queue_full, 10_000);
    assert!(metrics.local_counter(crate::coord::names::TELEMETRY_DROPPED_TOTAL, &[("reason", "queue_full")]) > 9_000.0);
    // A hung exporter cannot hold shutdown past its deadline.
    let t1 = Instant::now();
    t.shutdown(Instant::now() + Duration::from_millis(300)).await;
    // Waiting for the exporter would take its 120 s.
    assert!(t1.elapsed() < Duration::from_secs(60), "{:?}", t1.elapsed());
}

#[tokio::test]
async fn disabled_pipeline_builds_nothing() {
    let t = Telemetry::start(&cfg(8, 4, 10), vec![], None);
    assert!(!t.is_enabled());
    t.emit(ev(1));
    assert_eq!(t.stats(), TelemetryStats::default());
    t.shutdown(Instant::now() + Duration::from_millis(10)).await;
}

/// Run `f` with a subscriber holding only the telemetry layer bound to `t`.
async fn with_layer<F: std::future::Future<Output = ()>>(t: &Telemetry, f: F) {
    let sub = tracing_subscriber::registry().with(TelemetryLayer::to(t.clone()));
    let _g = tracing::subscriber::set_default(sub);
    f.await;
}

#[tokio::test]
async fn spans_become_a_tree_with_the_callers_trace_id() {
    let c = Arc::new(Collect::default());
    let t = Telemetry::start(&cfg(1000, 1000, 10_000), vec![Arc::new(CollectSink(c.clone()))], None);
    let scope = crate::call::CallScope {
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        ..crate::call::CallScope::detached("sess-1", Duration::from_secs(5))
    };
    with_layer(&t, async {
        let call = spans::tool_call("search_logs", "search-tools", &scope);
        async {
            let req = crate::search::SearchRequest {
                service: "nginx".into(),
                pattern: "timeout".into(),
                minutes_back: Some(15),
                max_results: 10,
                ..Default::default()
            };
            let s = spans::search(&req);
            async {
                let c = spans::cache_lookup();
                c.record("hit", false);
                drop(c);
                let p = spans::permit("nginx");
                p.record("permits_in_use", 3u64);
                p.record("permits_limit", 20u64);
                drop(p);
                tokio::time::sleep(Duration::from_millis(60)).await; // slower than slow_search_ms = 50
            }
            .instrument(s.clone())
            .await;
            spans::record_search(
                &s,
                &Ok(crate::search::SearchResponse {
                    files_searched: 4,
                    files_matched: 2,
                    total_matches: 7,
                    cached: false,
                    ..Default::default()
                }),
            );
        }
        .instrument(call.clone())
        .await;
        spans::record_tool_outcome(&call, &Ok(crate::call::ToolOutput::default()));
    })
    .await;
    t.shutdown(Instant::now() + Duration::from_secs(2)).await;
    let events: Vec<Event> = c.batches.lock().iter().flatten().cloned().collect();
    let by = |n: &str| {
        events.iter().find(|e| e.name == n && e.kind == EventKind::Span).unwrap_or_else(|| panic!("no {n} span in {events:#?}")).clone()
    };
    let (call, search, cache, permit) = (by("tool.call"), by("search"), by("cache.lookup"), by("permit.acquire"));
    for e in [&call, &search, &cache, &permit] {
        assert_eq!(e.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(e.attr("release"), Some(RELEASE));
        assert_eq!(e.attr("session"), Some("sess-1"));
    }
    assert_eq!(call.parent_span_id.as_deref(), Some("00f067aa0ba902b7"), "the caller's span is the root's parent");
    assert_eq!(call.attr("root"), Some("true"));
    assert_eq!(search.parent_span_id.as_deref(), Some(call.span_id.as_str()));
    assert_eq!(cache.parent_span_id.as_deref(), Some(search.span_id.as_str()));
    assert_eq!(search.attr("tool"), Some("search_logs"), "inherited");
    assert_eq!(cache.attr("service"), Some("nginx"), "inherited");
    assert_eq!(cache.attr("hit"), Some("false"));
    assert_eq!(permit.attr("permits_in_use"), Some("3"));
    assert_eq!(search.attr("slow"), Some("true"));
    assert_eq!(search.attr("result_count"), Some("7"));
    assert_eq!(search.attr("cached"), Some("false"));
    assert_eq!(search.attr("window"), Some("15m"));
    assert_eq!(call.status, "ok");
    assert!(search.duration_us >= 60_000);
    assert!(!events.iter().any(|e| e.kind == EventKind::Error));
}

#[tokio::test]
async fn failed_search_gives_an_error_event_with_breadcrumbs() {
    let c = Arc::new(Collect::default());
    let t = Telemetry::start(&cfg(1000, 1000, 10_000), vec![Arc::new(CollectSink(c.clone()))], None);
    let scope = crate::call::CallScope::detached("sess-2", Duration::from_secs(5));
    with_layer(&t, async {
        let first = spans::tool_call("list_services", "search-tools", &scope);
        spans::record_tool_outcome(&first, &Ok(crate::call::ToolOutput::default()));
        drop(first);
        let call = spans::tool_call("search_logs", "search-tools", &scope);
        let _e = call.enter();
        let req = crate::search::SearchRequest {
            service: "nginx".into(),
            pattern: "(unclosed".into(),
            hours_back: Some(2),
            ..Default::default()
        };
        let s = spans::search(&req);
        spans::record_search(
            &s,
            &Err(crate::search::SearchError {
                kind: crate::search::SearchErrorKind::InvalidRequest,
                message: "regex parse error".into(),
                field: Some("pattern".into()),
            }),
        );
    })
    .await;
    t.shutdown(Instant::now() + Duration::from_secs(2)).await;
    let events: Vec<Event> = c.batches.lock().iter().flatten().cloned().collect();
    let err = events.iter().find(|e| e.kind == EventKind::Error).expect("an error event");
    assert_eq!(err.status, "invalid_request");
    assert_eq!(err.message.as_deref(), Some("regex parse error"));
    assert_eq!(err.attr("service"), Some("nginx"));
    assert_eq!(err.attr("pattern"), Some("(unclosed"));
    assert_eq!(err.attr("window"), Some("2h"));
    assert_eq!(err.attr("tool"), Some("search_logs"));
    assert_eq!(err.attr("session"), Some("sess-2"));
    assert!(err.attr("user").is_some());
    assert!(err.breadcrumbs.iter().any(|b| b.category == "tool.call" && b.message.contains("list_services")), "{:?}", err.breadcrumbs);
    let search = events.iter().find(|e| e.kind == EventKind::Span && e.name == "search").unwrap();
    assert_eq!(search.status, "invalid_request");
    assert_eq!(err.trace_id, search.trace_id);
}

#[test]
fn traceparent_parsing() {
    assert_eq!(
        layer::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7))
    );
    assert_eq!(layer::parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
    assert_eq!(layer::parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), None);
    assert_eq!(layer::parse_traceparent("garbage"), None);
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn json_logs_carry_datadog_ids() {
    let buf = Buf::default();
    let w = buf.clone();
    let t = Telemetry::disabled(&cfg(8, 4, 10));
    let sub = tracing_subscriber::registry()
        .with(TelemetryLayer::to(t))
        .with(tracing_subscriber::fmt::layer().with_writer(move || w.clone()).event_format(logging::JsonFormat::from_env()));
    tracing::subscriber::with_default(sub, || {
        let span = tracing::info_span!(target: SPAN_TARGET, "tool.call", tool = "search_logs", traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let _e = span.enter();
        tracing::info!(target: "logai::test", answer = 42, "hello");
    });
    let text = String::from_utf8(buf.0.lock().clone()).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["message"], "hello");
    assert_eq!(line["fields"]["answer"], 42);
    assert_eq!(line["dd.trace_id"], (0xa3ce929d0e0e4736u64).to_string());
    assert!(line["dd.span_id"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["span"], "tool.call");
    assert!(line["dd.service"].as_str().is_some());
}

#[tokio::test]
async fn metrics_server_serves_metrics_and_healthz() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let m = crate::coord::Metrics::new();
    m.incr(crate::coord::names::SEARCHES_TOTAL, &[("service", "nginx"), ("cached", "false")], 3.0);
    m.observe(crate::coord::names::SEARCH_DURATION_MS, &[("service", "nginx")], 12.0);
    let snap = crate::coord::MetricsSnapshot { source: "local".into(), ..Default::default() };
    let _ = snap;
    let render: metrics_server::Render = Arc::new(move || {
        let m = m.clone();
        Box::pin(async move {
            let s = m.local_snapshot();
            Ok((metrics_server::render_native(&s), s.source.clone()))
        })
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(serve_metrics(listener, render, stop.clone()));
    let get = |path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let metrics = get("/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("content-type: text/plain; version=0.0.4"), "{metrics}");
    assert!(metrics.contains("logai_searches_total{cached=\"false\",service=\"nginx\"} 3"), "{metrics}");
    assert!(metrics.contains("logai_search_duration_seconds_bucket{service=\"nginx\",le=\"+Inf\"} 1"), "{metrics}");
    let health = get("/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200") && health.contains("\"status\":\"ok\""), "{health}");
    assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
    stop.cancel();
    server.await.unwrap().unwrap();
}
