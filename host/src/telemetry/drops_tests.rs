//! Dropped events counted everywhere an operator looks: the shared metrics
//! (`logai_telemetry_dropped_total`, what `/metrics` shows), the Sentry
//! exporter's client report (parsed by the `sentry_sdk` envelope parser,
//! received by Spotlight) and the Datadog exporter's DogStatsD counter
//! `log_ai.telemetry.dropped`. The queue is made to overflow without
//! timing: nothing reads it until the exporters have loaded, and the test
//! holds their loading back while it emits.

// A test scenario reads best top to bottom: one setup, one run, every check.
#![allow(clippy::too_many_lines)]

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;

use super::components_tests::{component, config, free_port, python, start_spotlight};
use super::*;
use crate::coord::names::{self, label, DropReason};

const CAPACITY: usize = 4;
const EMITTED: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_events_are_counted_in_metrics_a_sentry_client_report_and_dogstatsd() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let statsd = udp.local_addr().unwrap().port();
    let port = free_port();
    let capture = tempfile::tempdir().unwrap();
    let _spotlight = start_spotlight(port, capture.path());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            r#"[[exporter]]
name = "sentry"
component = "{sentry}"
enabled = true
timeout_ms = 5000
allowed_hosts = ["127.0.0.1:{port}"]
settings = {{ dsn = "http://abcdef0123456789@127.0.0.1:{port}/42" }}

[[exporter]]
name = "datadog"
component = "{dd}"
enabled = true
allowed_sockets = ["127.0.0.1:{statsd}"]
settings = {{ agent_host = "127.0.0.1", dogstatsd_port = "{statsd}", traces = "false" }}
"#,
            sentry = component("sentry").display(),
            dd = component("datadog").display()
        ),
    );
    let mut tcfg = cfg.telemetry.clone();
    tcfg.queue_capacity = CAPACITY;
    let metrics = crate::coord::Metrics::new();
    let (go, loaded) = tokio::sync::oneshot::channel::<()>();
    let (lcfg, m) = (cfg.clone(), metrics.clone());
    let exporter_names = exporters::enabled(&cfg).iter().map(|e| e.name.clone()).collect();
    let t = Telemetry::start_loading(
        &tcfg,
        exporter_names,
        Box::pin(async move {
            let _ = loaded.await;
            (exporters::load(&lcfg).await, Some(m))
        }),
    );
    {
        let sub = tracing_subscriber::registry().with(TelemetryLayer::to(t.clone()));
        let _g = tracing::subscriber::set_default(sub);
        for i in 0..EMITTED {
            tracing::error!(target: "logai::drops_test", "failure {i}");
        }
    }
    go.send(()).unwrap();
    t.shutdown(Instant::now() + Duration::from_secs(20)).await;
    let dropped = (EMITTED - CAPACITY) as f64;
    assert_eq!(t.stats().dropped_queue_full, dropped as u64, "{:?}", t.stats());
    assert!(t.stats().exporters.iter().all(|e| e.failed_exports == 0), "{:?}", t.stats());

    // The shared metrics (what /metrics and `logai metrics` show).
    assert_eq!(metrics.local_counter(names::TELEMETRY_DROPPED_TOTAL, &[(label::REASON, DropReason::QueueFull.as_str())]), dropped);

    // Datadog: the DogStatsD counter.
    let mut lines = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = udp.recv(&mut buf) {
        lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_string));
    }
    let want = format!("log_ai.telemetry.dropped:{dropped}|c|#reason:queue_full,kind:error,env:none");
    assert!(lines.contains(&want), "{want} missing from {lines:#?}");

    // Sentry: a client report, as Spotlight received it and sentry_sdk reads it.
    let t0 = Instant::now();
    let files = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(capture.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("sentry_envelope"))
            .collect();
        if files.len() > CAPACITY || t0.elapsed() > Duration::from_secs(10) {
            break files;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let script = r#"
import json, sys
from sentry_sdk.envelope import Envelope
out = []
for path in sys.argv[1:]:
    for item in Envelope.deserialize(open(path, "rb").read()).items:
        # sentry_sdk parses event and transaction payloads; others stay bytes.
        payload = item.payload.json if item.payload.json is not None else json.loads(item.payload.get_bytes())
        out.append({"type": item.headers.get("type"), "payload": payload})
print(json.dumps(out))
"#;
    let o = Command::new(python()).arg("-c").arg(script).args(&files).output().unwrap();
    assert!(o.status.success(), "sentry_sdk could not parse the envelopes: {}", String::from_utf8_lossy(&o.stderr));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(items.iter().filter(|i| i["type"] == "event").count(), CAPACITY, "{items:#?}");
    let reports: Vec<&serde_json::Value> = items.iter().filter(|i| i["type"] == "client_report").collect();
    assert_eq!(reports.len(), 1, "{items:#?}");
    assert_eq!(
        reports[0]["payload"]["discarded_events"],
        serde_json::json!([{"reason": "queue_overflow", "category": "error", "quantity": EMITTED - CAPACITY}])
    );
}
