//! Telemetry through the real binary: `logai serve` with the search-tools
//! plugin and the Datadog exporter sends DogStatsD metrics for real searches
//! to a UDP receiver on loopback; with every exporter off no exporter
//! component is loaded; a receiver that is down does not affect tool calls.
//! (The exporters against the real trace agent, Spotlight and Prometheus are
//! in host/src/telemetry/components_tests.rs.)

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logai_e2e::mcp_client::McpClient;
use logai_e2e::{logai_bin, plugin_dist, sample_services_toml, write_manifest};
use serde_json::json;

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

fn serve(manifest: &Path, stderr_to: &Path) -> McpClient {
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
