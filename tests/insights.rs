//! `get_insights` (plugins/insights, through the host's `metrics` import)
//! over stdio, with and without Redis: a session makes known calls
//! (searches on two services, a repeat answered by the cache, a search of
//! an unknown service, searches until the rate limit refuses one) and the
//! tool's structured figures equal what the client saw. With Redis another
//! session sees them (`all_sessions`), and a session whose person may
//! search only one service (`[access]`) sees only that service's series;
//! without Redis, the session sees its own and a second session sees none
//! (`this_session`).

use std::collections::BTreeMap;
use std::time::Instant;

use logai::coord::BUCKET_BOUNDS_MS;
use logai_e2e::{sample_services_toml, wait_for, write_manifest, McpClient, RedisServer};
use serde_json::{json, Value};

/// What the client saw.
#[derive(Default, Debug)]
struct Seen {
    /// service -> (answered, of which cached, slowest round trip ms)
    searches: BTreeMap<String, (u64, u64, f64)>,
    /// error kind -> count
    errors: BTreeMap<String, u64>,
    rate_limited: u64,
}

impl Seen {
    /// One `search_logs` call, counted by how it ended.
    fn search(&mut self, c: &mut McpClient, service: &str, pattern: &str) -> bool {
        let t0 = Instant::now();
        let r = c.call_tool_ok("search_logs", json!({"service": service, "pattern": pattern}));
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if r["isError"] == true {
            let text = r["content"][0]["text"].as_str().unwrap_or_default().to_lowercase();
            let kind = if text.contains("rate limit") {
                self.rate_limited += 1;
                "rate_limited"
            } else if text.contains("unknown service") {
                // A bad `service` argument: the search's `invalid_request`.
                "invalid_request"
            } else {
                panic!("unexpected search error: {r}")
            };
            *self.errors.entry(kind.into()).or_insert(0) += 1;
            return false;
        }
        let e = self.searches.entry(service.into()).or_insert((0, 0, 0.0));
        e.0 += 1;
        e.1 += u64::from(r["structuredContent"]["cached"] == true);
        e.2 = e.2.max(ms);
        true
    }
}

/// The calls: 4 searches of payments, one of them repeated (a cache hit),
/// 2 of auth, 1 of an unknown service, then searches until the rate limit
/// (burst 12) refuses one.
fn make_calls(c: &mut McpClient) -> Seen {
    let mut seen = Seen::default();
    for p in ["timeout", "declined", "refund", "error"] {
        assert!(seen.search(c, "payments", p));
    }
    assert!(seen.search(c, "payments", "timeout"));
    for p in ["login", "failed"] {
        assert!(seen.search(c, "auth", p));
    }
    assert!(!seen.search(c, "no-such-service", "x"));
    for i in 0..40 {
        if !seen.search(c, "auth", &format!("user{i}")) {
            break;
        }
    }
    assert_eq!(seen.rate_limited, 1, "the rate limit refused one search: {seen:?}");
    assert_eq!(seen.searches["payments"].1, 1, "the repeat came from the cache: {seen:?}");
    seen
}

fn test_manifest(dir: &std::path::Path, redis: Option<&RedisServer>, access: &str) -> std::path::PathBuf {
    let redis =
        redis.map(|r| format!("[redis]\nurl = \"{}\"\nkey_prefix = \"insights-{}\"\n", r.url(), std::process::id())).unwrap_or_default();
    let extra = format!(
        "{}\n[limits]\nrate_limit_per_user_per_minute = 1\nrate_limit_burst = 12\n\n[cache]\nenabled = true\n\n{redis}\n{access}",
        sample_services_toml()
    );
    write_manifest(dir, &[("search-tools", "search-tools.wasm"), ("insights", "insights.wasm")], &extra)
}

fn insights(c: &mut McpClient, window: &str) -> Value {
    let r = c.call_tool_ok("get_insights", json!({"window": window}));
    assert_ne!(r["isError"], true, "{r}");
    r["structuredContent"].clone()
}

/// The figures `get_insights` must give for what the client saw.
fn check(figures: &Value, seen: &Seen, scope: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut expect = |what: &str, got: &Value, want: Value| {
        if *got != want {
            problems.push(format!("{what}: got {got}, want {want}"));
        }
    };
    expect("scope", &figures["scope"], json!(scope));
    let by_service: BTreeMap<String, &Value> =
        figures["services"].as_array().into_iter().flatten().map(|s| (s["service"].as_str().unwrap_or("").to_string(), s)).collect();
    expect("services", &json!(by_service.keys().collect::<Vec<_>>()), json!(seen.searches.keys().collect::<Vec<_>>()));
    for (svc, (n, cached, slowest_ms)) in &seen.searches {
        let Some(s) = by_service.get(svc) else { continue };
        expect(&format!("{svc} searches"), &s["searches"], json!(n));
        expect(&format!("{svc} cached"), &s["cached"], json!(cached));
        // The host times less than the client's round trip; the estimate
        // stays within the bucket holding the slowest search.
        let bound = BUCKET_BOUNDS_MS.iter().copied().find(|b| *b >= *slowest_ms).unwrap_or(f64::MAX);
        let p95 = s["p95_ms"].as_f64().unwrap_or(-1.0);
        let what = format!("{svc} p95 {p95} ms in (0, {bound}] (slowest round trip {slowest_ms:.1} ms)");
        expect(&what, &json!(p95 > 0.0 && p95 <= bound), json!(true));
    }
    let total: u64 = seen.errors.values().sum();
    expect("errors_total", &figures["errors_total"], json!(total));
    expect("errors_by_kind", &figures["errors_by_kind"], json!(seen.errors));
    let answered: u64 = seen.searches.values().map(|s| s.0).sum();
    let hits: u64 = seen.searches.values().map(|s| s.1).sum();
    expect("cache hits", &figures["cache"]["hits"], json!(hits));
    expect("cache misses", &figures["cache"]["misses"], json!(answered - hits));
    expect("refusals", &figures["refusals"], json!({"busy": 0, "rate_limited": seen.rate_limited}));
    expect("permits", &figures["permits"]["in_use"], json!(0));
    expect("queued", &figures["permits"]["queued"], json!(0));
    expect("limit", &figures["permits"]["limit"], json!(20));
    let slowest = figures["services"][0]["service"].clone();
    expect("slowest", &figures["slowest_service"], slowest);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `get_insights` until its figures equal `seen` (the shared view may
/// trail the last flush by a second); panics with the differences.
fn expect_figures(c: &mut McpClient, seen: &Seen, scope: &str) {
    let t0 = Instant::now();
    loop {
        let f = insights(c, "1h");
        let Err(e) = check(&f, seen, scope) else { break };
        assert!(t0.elapsed().as_secs() < 30, "get_insights never matched the calls made:\n{e}\nfigures: {f:#}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    // The longer windows hold the same calls.
    for w in ["6h", "24h"] {
        check(&insights(c, w), seen, scope).unwrap_or_else(|e| panic!("window {w}: {e}"));
    }
}

#[test]
fn figures_equal_the_calls_made_with_redis() {
    let redis = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = test_manifest(dir.path(), Some(&redis), "");
    let mut worker = McpClient::serve(&manifest, &[]);
    worker.initialize();
    let seen = make_calls(&mut worker);
    // Another session sees them: the shared, bucketed series.
    let mut other = McpClient::serve(&manifest, &[]);
    other.initialize();
    expect_figures(&mut other, &seen, "all_sessions");
    assert!(worker.close().success());
    let text = other.call_tool_ok("get_insights", json!({}))["content"][0]["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("Last 1h, all sessions:\n"), "{text}");
    assert!(other.close().success());
    // A person who may search only payments sees only payments' series
    // (the rest of the figures have no service: unchanged).
    let narrow_dir = tempfile::tempdir().unwrap();
    let narrow = test_manifest(narrow_dir.path(), Some(&redis), "[access]\ndefault = [\"payments\"]\n");
    let mut c = McpClient::serve(&narrow, &[]);
    c.initialize();
    let f = insights(&mut c, "24h");
    let services: Vec<&str> = f["services"].as_array().unwrap().iter().map(|s| s["service"].as_str().unwrap()).collect();
    assert_eq!(services, ["payments"], "{f:#}");
    assert_eq!(f["services"][0]["searches"], json!(seen.searches["payments"].0));
    assert_eq!(f["errors_total"], json!(seen.errors.values().sum::<u64>()));
    assert!(c.close().success());
    // Buckets expire: every bucket hash has a TTL of at most 25 h.
    let keys = redis.cli(&["--scan", "--pattern", &format!("{{insights-{}}}:metrics:w:*", std::process::id())]);
    assert!(keys.lines().count() >= 2, "a 1-minute and a 5-minute bucket: {keys}");
    for k in keys.lines() {
        let ttl: i64 = redis.cli(&["TTL", k]).trim().parse().unwrap();
        assert!(ttl > 0 && ttl <= 25 * 3600, "{k}: TTL {ttl}");
    }
}

#[test]
fn without_redis_it_answers_for_this_session_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = test_manifest(dir.path(), None, "");
    let mut c = McpClient::serve(&manifest, &[]);
    c.initialize();
    let seen = make_calls(&mut c);
    expect_figures(&mut c, &seen, "this_session");
    let text = c.call_tool_ok("get_insights", json!({}))["content"][0]["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("Last 1h, this session only"), "{text}");
    // The output schema is declared, and the answer holds to it.
    let list = c.request("tools/list", json!({}));
    let tool = list["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "get_insights").unwrap().clone();
    assert_eq!(tool["outputSchema"]["type"], "object", "{tool}");
    assert!(c.close().success());
    // Another session without Redis has seen nothing of it.
    let mut fresh = McpClient::serve(&manifest, &[]);
    fresh.initialize();
    let f = wait_for("a fresh session's insights", 30, || Some(insights(&mut fresh, "1h")));
    assert_eq!((f["services"].clone(), f["errors_total"].clone()), (json!([]), json!(0)), "{f:#}");
    assert!(fresh.close().success());
}
