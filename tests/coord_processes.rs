//! Coordination across real processes: every child is a session stand-in
//! (`coord-holder`, one `Coordinator` each, like one `logai serve`) against
//! a real redis-server on a free loopback port.
//!
//! The witness of concurrency is independent of the coordinator: each holder
//! appends `S`/`E` stamps to one file with O_APPEND while it holds a permit;
//! the maximum overlap is computed afterwards from the file alone.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logai::call::CancellationToken;
use logai::config::{CacheConfig, LimitsConfig, RedisConfig};
use logai::coord::{names, Coordinator, Mode};
use logai_e2e::RedisServer;

const HOLDER: &str = env!("CARGO_BIN_EXE_coord-holder");

fn holder(url: &str, args: &[&str], global: u32, service: u32, lease_ms: u64) -> Command {
    let mut c = Command::new(HOLDER);
    c.arg(url).args(args);
    c.env("COORD_GLOBAL", global.to_string())
        .env("COORD_SERVICE", service.to_string())
        .env("COORD_LEASE_MS", lease_ms.to_string())
        .env("RUST_LOG", "warn");
    c
}

async fn parent(url: &str, global: u32, service: u32, lease_ms: u64) -> Coordinator {
    let redis =
        RedisConfig { url: Some(url.into()), key_prefix: "e2e".into(), op_timeout_ms: 250, connect_timeout_ms: 500, max_backoff_ms: 500 };
    let limits = LimitsConfig {
        max_global_searches: global,
        max_per_service_searches: service,
        permit_lease_ms: lease_ms,
        permit_wait_ms: 60_000,
        ..LimitsConfig::default()
    };
    Coordinator::start(&redis, &limits, &CacheConfig::default()).await
}

/// Max overlap (global, per service) of `S`..`E` intervals; only intervals
/// whose permit was shared through Redis (`r`) when `shared_only`.
fn max_concurrency(witness: &Path, shared_only: bool) -> (u32, HashMap<String, u32>, usize) {
    let text = std::fs::read_to_string(witness).unwrap();
    let mut events: Vec<(u128, i32, String)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 5, "torn witness line {line:?}");
        if shared_only && f[4] != "r" {
            continue;
        }
        let t: u128 = f[2].parse().unwrap();
        // Ends sort before starts at the same instant.
        events.push((t, if f[0] == "S" { 1 } else { -1 }, f[1].to_string()));
    }
    events.sort_by_key(|(t, d, _)| (*t, *d));
    let (mut g, mut mg) = (0i32, 0i32);
    let mut per: HashMap<String, i32> = HashMap::new();
    let mut max_per: HashMap<String, u32> = HashMap::new();
    for (_, d, s) in &events {
        g += d;
        mg = mg.max(g);
        let e = per.entry(s.clone()).or_insert(0);
        *e += d;
        let m = max_per.entry(s.clone()).or_insert(0);
        *m = (*m).max(*e as u32);
    }
    (mg as u32, max_per, events.len() / 2)
}

fn wait_all(children: Vec<Child>) -> u64 {
    let mut total = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "a session failed a call: {}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
        let done = stdout.lines().find(|l| l.starts_with("DONE ")).expect("DONE line");
        assert!(done.ends_with("mode=Redis"), "a session did not return to Redis by itself: {done}");
        total += done.split(' ').nth(1).unwrap().parse::<u64>().unwrap();
    }
    total
}

fn searches_total(snap: &logai::coord::MetricsSnapshot) -> f64 {
    snap.counters.iter().filter(|c| c.name == names::SEARCHES_TOTAL).map(|c| c.value).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_never_exceed_global_or_service_limits() {
    let redis = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let witness = dir.path().join("witness");
    let procs = 12;
    let children: Vec<Child> = (0..procs)
        .map(|_| {
            holder(&redis.url(), &["work", "3000", witness.to_str().unwrap(), "4"], 4, 2, 1500)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let total = wait_all(children);
    let (g, per, n) = max_concurrency(&witness, false);
    eprintln!("{procs} processes, {n} permits, max concurrency global {g}, per service {per:?}");
    assert_eq!(n as u64, total);
    assert!(g <= 4, "global concurrency {g} > MAX_GLOBAL_SEARCHES 4");
    assert!(g >= 3, "too little contention to prove anything ({g})");
    for (s, m) in &per {
        assert!(*m <= 2, "service {s}: concurrency {m} > MAX_PER_SERVICE_SEARCHES 2");
    }
    // Every session's counts reached the shared metrics.
    let p = parent(&redis.url(), 4, 2, 1500).await;
    assert_eq!(searches_total(&p.snapshot().await), total as f64);
    assert_eq!(redis.cli(&["ZCARD", "{e2e}:permits:global"]).trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_holders_permits_return_within_the_lease() {
    let redis = RedisServer::start(&[]);
    let lease = 1500u64;
    // Ten holders fill the global limit (10) across three services (4 each at most).
    let (global, per_service) = (10, 4);
    let services: Vec<&str> = (0..10).map(|i| ["alpha", "beta", "gamma"][i % 3]).collect();
    let mut holders = logai_e2e::hold_permits(HOLDER, &redis.url(), &services, global, per_service, lease);
    let p = parent(&redis.url(), global, per_service, lease).await;
    let snap = p.snapshot().await;
    let in_use =
        snap.gauges.iter().find(|g| g.name == names::PERMITS_IN_USE && g.labels == vec![("scope".to_string(), "global".to_string())]);
    assert_eq!(in_use.map(|g| g.value), Some(10.0));
    // Two waiters queue (one here, one in another process's place: a
    // second Coordinator), then every holder is SIGKILLed.
    let q = parent(&redis.url(), global, per_service, lease).await;
    let never = CancellationToken::new();
    let waiters = {
        let (p, q, never) = (p.clone(), q.clone(), never.clone());
        tokio::spawn(async move {
            let a = p.acquire("alpha", &never, |_| {});
            let b = q.acquire("beta", &never, |_| {});
            let (a, b) = tokio::join!(a, b);
            (a.unwrap(), b.unwrap(), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiters.is_finished(), "waiters got permits while all were held");
    let killed_at = Instant::now();
    for h in &mut holders {
        h.kill().unwrap();
        h.wait().unwrap();
    }
    let (a, b, granted_at) = waiters.await.unwrap();
    let took = granted_at - killed_at;
    eprintln!("permits of SIGKILLed holders came back {took:?} after the kill (lease {lease} ms)");
    assert!(a.is_shared() && b.is_shared());
    // Their slots came back with the processes and their Redis leases
    // within the lease; a permit that never came back would hold the
    // waiters for their whole 60 s budget.
    assert!(took < Duration::from_secs(30), "took {took:?}, lease is {lease} ms");
    // All ten came back: only the two waiters hold one now.
    tokio::time::sleep(Duration::from_millis(lease)).await;
    let snap = p.snapshot().await;
    let in_use =
        snap.gauges.iter().find(|g| g.name == names::PERMITS_IN_USE && g.labels == vec![("scope".to_string(), "global".to_string())]);
    assert_eq!(in_use.map(|g| g.value), Some(2.0), "{:?}", snap.gauges);
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_load_fails_no_call_and_loses_no_count() {
    let mut redis = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let witness = dir.path().join("witness");
    let procs = 8;
    let children: Vec<Child> = (0..procs)
        .map(|_| {
            holder(&redis.url(), &["work", "5000", witness.to_str().unwrap(), "3"], 4, 2, 1500)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.spawn();
    let back = Instant::now();
    // A fresh session sees Redis at once; the children must come back by
    // themselves within the backoff cap (500 ms) and finish on Redis.
    let p = parent(&redis.url(), 4, 2, 1500).await;
    assert_eq!(p.mode(), Mode::Redis);
    let total = wait_all(children);
    eprintln!("{procs} sessions, {total} permits across a Redis restart; back after {:?}", back.elapsed());
    let text = std::fs::read_to_string(&witness).unwrap();
    let local = text.lines().filter(|l| l.starts_with("S ") && l.ends_with(" l")).count();
    let shared_after: usize = text.lines().filter(|l| l.starts_with("S ") && l.ends_with(" r")).count();
    eprintln!("permits on local state during the outage: {local}; through Redis: {shared_after}");
    assert!(local > 0, "the outage was not noticed");
    // Limits held whenever the permits were shared.
    let (g, per, _) = max_concurrency(&witness, true);
    assert!(g <= 4, "global {g}");
    assert!(per.values().all(|m| *m <= 2), "{per:?}");
    // No count lost: Redis restarted empty and every live session re-added its totals.
    let snap = p.snapshot().await;
    assert_eq!(snap.source, "redis");
    assert_eq!(searches_total(&snap), total as f64);
}

/// Every permit is held elsewhere and the plugin's time limit (2 s) is far
/// shorter than `permit_wait_ms` (30 s): the agent gets the "busy" answer
/// naming the limit before the limit stops the call, not a time-limit error.
#[test]
fn a_queued_search_answers_busy_before_the_plugins_time_limit() {
    let redis = RedisServer::start(&[]);
    let mut holders = logai_e2e::hold_permits(HOLDER, &redis.url(), &["payments"], 1, 1, 10_000);
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("logai.toml");
    std::fs::write(
        &manifest,
        format!(
            "{}\n[server]\nsession_root = \"{}\"\ncompile_cache_dir = \"{}\"\n\n[redis]\nurl = \"{}\"\nkey_prefix = \"e2e\"\n\n\
             [limits]\nmax_global_searches = 1\nmax_per_service_searches = 1\npermit_wait_ms = 30000\n\n\
             [cache]\nenabled = false\n\n[[plugin]]\nname = \"search-tools\"\ncomponent = \"{}\"\ntimeout_ms = 2000\n",
            logai_e2e::sample_services_toml(),
            dir.path().join("sessions").display(),
            logai_e2e::target_dir().join("logai-test-cache").display(),
            redis.url(),
            logai_e2e::plugin_dist().join("search-tools.wasm").display()
        ),
    )
    .unwrap();
    let mut c = logai_e2e::McpClient::serve(&manifest, &[]);
    c.initialize();
    let t0 = Instant::now();
    let r = c.call_tool("search_logs", serde_json::json!({"service": "payments", "pattern": "timeout"}));
    let took = t0.elapsed();
    let text = r.to_string();
    eprintln!("answered after {took:?}: {text}");
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(text.contains("busy") && text.contains("MAX_GLOBAL_SEARCHES"), "{text}");
    // Answered within the plugin's 2 s: after it, the answer would be the
    // time-limit error, not "busy".
    assert!(!text.contains("time limit"), "{text}");
    assert!(c.close().success());
    for h in &mut holders {
        let _ = h.kill();
        let _ = h.wait();
    }
}
