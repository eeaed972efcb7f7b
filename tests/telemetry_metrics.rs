//! `logai metrics --listen` scraped by a real Prometheus (apt `prometheus`,
//! scrape interval 1s) while several `logai serve` sessions search through
//! one real Redis: the counters and `histogram_quantile` in PromQL agree with
//! what the sessions did and with the exposition text; `promtool check
//! metrics` is clean.

use std::io::Write;
use std::process::{Command, Stdio};

use logai_e2e::{
    free_port, http_get, logai_bin, plugin_dist, sample_services_toml, wait_for, which, write_manifest, McpClient, Proc, RedisServer,
};
use serde_json::json;

/// Prometheus' histogram_quantile over (upper bound, cumulative count) pairs.
fn quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for (i, &(le, c)) in buckets.iter().enumerate() {
        if c >= rank {
            if le.is_infinite() {
                return buckets[i - 1].0;
            }
            let lower = if i == 0 { 0.0 } else { prev.0 };
            return lower + (le - lower) * (rank - prev.1) / (c - prev.1);
        }
        prev = (le, c);
    }
    f64::NAN
}

#[test]
fn prometheus_scrapes_logai_metrics_while_sessions_search() {
    let redis = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[redis]\nurl = \"{}\"\nkey_prefix = \"telemetry-metrics-{}\"\n\n[[exporter]]\nname = \"prometheus\"\ncomponent = \"{}\"\n",
        sample_services_toml(),
        redis.url(),
        std::process::id(),
        plugin_dist().join("prometheus.wasm").display()
    );
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);
    let mport = free_port();
    let _metrics = Proc(
        Command::new(logai_bin())
            .args(["metrics", "--config"])
            .arg(&manifest)
            .args(["--listen", &format!("127.0.0.1:{mport}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("metrics.log")).unwrap()))
            .spawn()
            .unwrap(),
    );
    wait_for("logai metrics /healthz", 60, || http_get(mport, "/healthz"));

    // Three sessions, four searches each (distinct patterns: no cache hits).
    let patterns = ["timeout", "declined", "refund", "error"];
    let sessions: Vec<_> = (0..3)
        .map(|i| {
            let manifest = manifest.clone();
            std::thread::spawn(move || {
                let mut c = McpClient::serve(&manifest, &[]);
                c.initialize();
                for p in patterns {
                    c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": format!("{p}|session{i}")}));
                }
                assert!(c.close().success());
            })
        })
        .collect();
    for s in sessions {
        s.join().unwrap();
    }

    let pport = free_port();
    let pdir = tempfile::tempdir().unwrap();
    std::fs::write(
        pdir.path().join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: logai\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"),
    )
    .unwrap();
    let _prom = Proc(
        Command::new(which("prometheus"))
            .arg(format!("--config.file={}", pdir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", pdir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = |q: &str| -> Option<f64> {
        let enc: String =
            q.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
        let body = http_get(pport, &format!("/api/v1/query?query={enc}"))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let searches = wait_for("prometheus to scrape 12 searches", 60, || query("sum(logai_searches_total)").filter(|v| *v >= 12.0));
    assert_eq!(searches, 12.0, "3 sessions × 4 searches");

    // The exposition text: promtool-clean, and the histogram PromQL sees.
    let text = http_get(mport, "/metrics").unwrap();
    let mut child = Command::new(which("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut buckets: std::collections::BTreeMap<String, f64> = Default::default();
    for line in text.lines().filter(|l| l.starts_with("logai_search_duration_seconds_bucket{")) {
        let le = line.split("le=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *buckets.entry(le).or_default() += v;
    }
    let mut pairs: Vec<(f64, f64)> =
        buckets.iter().map(|(le, c)| (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, *c)).collect();
    pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    assert_eq!(pairs.last().unwrap().1, 12.0, "every search observed once: {pairs:?}");
    let expected = quantile(0.95, &pairs);
    let p95 = wait_for("histogram_quantile", 30, || query("histogram_quantile(0.95, sum by (le) (logai_search_duration_seconds_bucket))"));
    assert!((p95 - expected).abs() <= expected * 1e-6 + 1e-9, "PromQL p95 {p95} vs the exposition's {expected}");
}
