//! Redis with the shipped policy (config/redis/logai.conf: `volatile-lru`)
//! and a tiny `maxmemory`, the shared cache filled 25x past it: Redis evicts
//! cached results (they have a TTL) and never the coordination state (no
//! TTL). Permit holders are separate processes (`coord-holder`, one
//! `Coordinator` each, renewing their leases the whole time); the warning
//! check runs the real `logai serve`.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logai::call::CancellationToken;
use logai::config::{CacheConfig, LimitsConfig, RedisConfig};
use logai::coord::{names, Coordinator, Mode, PermitError};
use logai_e2e::{logai_bin, plugin_dist, sample_services_toml, write_manifest, McpClient, RedisServer};
use serde_json::json;

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/redis/logai.conf");
const HOLDER: &str = env!("CARGO_BIN_EXE_coord-holder");
const MAXMEMORY: &str = "2mb";
const MAXMEMORY_BYTES: u64 = 2 * 1024 * 1024;
/// Cached results written: 25x maxmemory.
const FILL_BYTES: u64 = 25 * MAXMEMORY_BYTES;
const ENTRY: usize = 64 * 1024;
const GLOBAL: u32 = 3;
const PER_SERVICE: u32 = 2;
/// Long enough that a lease survives a renewal or two lost to a loaded machine.
const LEASE_MS: u64 = 6000;
/// One call per minute, 2 above the rate at once: the 4th call is refused for a minute.
const RATE_PER_MINUTE: u32 = 1;
const RATE_BURST: u32 = 2;

/// A session stand-in in this process (key prefix `e2e`, like coord-holder).
async fn session(url: &str) -> Coordinator {
    let redis =
        RedisConfig { url: Some(url.into()), key_prefix: "e2e".into(), op_timeout_ms: 2000, connect_timeout_ms: 2000, max_backoff_ms: 500 };
    let limits = LimitsConfig {
        max_global_searches: GLOBAL,
        max_per_service_searches: PER_SERVICE,
        permit_lease_ms: LEASE_MS,
        permit_wait_ms: 300,
        rate_limit_per_user_per_minute: RATE_PER_MINUTE,
        rate_limit_burst: RATE_BURST,
        ..LimitsConfig::default()
    };
    let c = Coordinator::start(&redis, &limits, &CacheConfig::default()).await;
    assert_eq!(c.mode(), Mode::Redis);
    c
}

fn info_field(redis: &RedisServer, section: &str, field: &str) -> u64 {
    let info = redis.cli(&["INFO", section]);
    let prefix = format!("{field}:");
    info.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("INFO {section} has no {field}")).trim().parse().unwrap()
}

/// Errors a session counted because Redis refused or failed an operation.
fn redis_errors(c: &Coordinator) -> (f64, f64) {
    let m = c.metrics();
    (
        m.local_counter(names::ERRORS_TOTAL, &[("kind", "redis_reply")]),
        m.local_counter(names::ERRORS_TOTAL, &[("kind", "redis_unavailable")]),
    )
}

fn counter(snap: &logai::coord::MetricsSnapshot, name: &str, labels: &[(&str, &str)]) -> f64 {
    snap.counters
        .iter()
        .filter(|c| c.name == name && labels.iter().all(|(k, v)| c.labels.iter().any(|(lk, lv)| lk == k && lv == v)))
        .map(|c| c.value)
        .sum()
}

/// A real `logai serve` against `redis`: one search through MCP, then EOF.
/// Returns what it logged at WARN and above.
fn serve_once(dir: &Path, redis: &RedisServer) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let extra =
        format!("{}\n[redis]\nurl = \"{}\"\nconnect_timeout_ms = 5000\nop_timeout_ms = 2000\n", sample_services_toml(), redis.url());
    let manifest = write_manifest(dir, &[("search-tools", "search-tools.wasm")], &extra);
    let log = dir.join("stderr.log");
    let mut cmd = Command::new(logai_bin());
    cmd.arg("serve").arg("--config").arg(&manifest).env("LOG_LEVEL", "warn").stderr(File::create(&log).unwrap());
    let mut c = McpClient::spawn(cmd);
    c.initialize();
    let r = c.call_tool_ok("search_logs", json!({"service": "auth", "pattern": "error", "date": "2026-11-19"}));
    assert_ne!(r.get("isError"), Some(&json!(true)), "search failed: {r}");
    assert!(c.close().success());
    std::fs::read_to_string(&log).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_maxmemory_evicts_cached_results_never_permits_rate_state_or_metrics() {
    assert!(plugin_dist().join("search-tools.wasm").is_file(), "build the plugins first (scripts/build-plugins)");
    let started = Instant::now();
    let redis = RedisServer::start(&[CONF, "--maxmemory", MAXMEMORY]);
    let url = redis.url();
    assert_eq!(redis.cli(&["CONFIG", "GET", "maxmemory-policy"]).lines().nth(1), Some("volatile-lru"), "the shipped policy");
    assert_eq!(redis.cli(&["CONFIG", "GET", "maxmemory"]).lines().nth(1), Some(MAXMEMORY_BYTES.to_string().as_str()));
    let dir = tempfile::tempdir().unwrap();

    // The global limit held by three other processes (one per service),
    // renewing their leases every LEASE_MS/3 all along.
    let holders = logai_e2e::hold_permits(HOLDER, &url, &["alpha", "beta", "gamma"], GLOBAL, PER_SERVICE, LEASE_MS);
    let holder_pids: Vec<String> = holders.iter().map(|h| h.id().to_string()).collect();

    // A user at the rate limit: RATE_BURST + 1 calls go through, the next is refused.
    let user = session(&url).await;
    let mut allowed = 0;
    while user.check_rate("alice").await.is_ok() {
        allowed += 1;
        assert!(allowed <= RATE_BURST + 1, "the rate limit did not apply");
    }
    assert_eq!(allowed, RATE_BURST + 1);
    assert!(user.flush_metrics().await);
    let before_fill = info_field(&redis, "memory", "used_memory");

    // Fill the cache 25x past maxmemory (distinct 64 KiB results) while a
    // second session keeps asking for a permit and the user keeps calling:
    // every permit request must end Busy (in Redis: this process's own
    // local permits are all free) and every call of the user be refused.
    let prober = session(&url).await;
    let filling = Arc::new(AtomicBool::new(true));
    let probes = {
        let (prober, user, filling) = (prober.clone(), user.clone(), filling.clone());
        tokio::spawn(async move {
            let never = CancellationToken::new();
            let mut n = 0u32;
            loop {
                match prober.acquire("delta", &never, |_| {}).await {
                    Err(PermitError::Busy { message, .. }) => {
                        assert!(message.contains(&format!("{GLOBAL}/{GLOBAL} searches running globally")), "{message}")
                    }
                    Err(e) => panic!("permit request during the fill: {e}"),
                    Ok(g) => panic!("granted a permit over the global limit during the fill (shared: {})", g.is_shared()),
                }
                let r = user.check_rate("alice").await;
                assert!(r.is_err(), "the user's rate state was lost during the fill (probe {n}; Redis errors {:?})", redis_errors(&user));
                n += 1;
                if !filling.load(Ordering::SeqCst) {
                    return n;
                }
            }
        })
    };
    let filler = session(&url).await;
    let entries = (FILL_BYTES / ENTRY as u64) as usize;
    let fill_started = Instant::now();
    for i in 0..entries {
        let value = logai_e2e::incompressible(ENTRY, i as u64);
        filler.cache_put(&format!("fill-{i}"), &value).await;
        // Paced (~2.5 s in all) so that several probes overlap the evictions.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let fill_took = fill_started.elapsed();
    filling.store(false, Ordering::SeqCst);
    let probes = probes.await.expect("a probe failed");

    // Redis really was full and evicted.
    let evicted = info_field(&redis, "stats", "evicted_keys");
    let used = info_field(&redis, "memory", "used_memory");
    let cached_left = redis.cli(&["KEYS", "{e2e}:cache:*"]).lines().filter(|l| !l.trim().is_empty()).count();
    // Coordination state: present, without a TTL (so never evictable).
    let coordination =
        ["{e2e}:permits:global", "{e2e}:permits:svc:alpha", "{e2e}:rate", "{e2e}:metrics", "{e2e}:metrics:batches", "{e2e}:metrics:epoch"];
    let ttls: Vec<(&str, String)> = coordination.iter().map(|k| (*k, redis.cli(&["TTL", k]).trim().to_string())).collect();
    // The leases are all there, each renewed by its holder.
    let leases = redis.cli(&["ZRANGE", "{e2e}:permits:global", "0", "-1"]);
    let lease_holders: Vec<&str> = leases.lines().map(str::trim).filter(|l| !l.is_empty()).collect();

    // A fresh session afterwards: no permit (Busy, from Redis), the user
    // still refused (shared rate state), the oldest results evicted, and
    // the cache still stores and serves.
    let late = session(&url).await;
    let never = CancellationToken::new();
    let late_permit = late.acquire("alpha", &never, |_| {}).await;
    let late_rate = late.check_rate("alice").await;
    let oldest = late.cache_get("fill-0").await;
    late.cache_put("after-the-fill", b"still cached").await;
    let newest = late.cache_get("after-the-fill").await;
    // Every count survived: flushed before, during and after the fill.
    for c in [&user, &prober, &filler] {
        assert!(c.flush_metrics().await, "metrics could not be flushed");
    }
    // The holders flush their grants by themselves, within a second.
    let until = Instant::now() + Duration::from_secs(5);
    let snap = loop {
        let snap = late.snapshot().await;
        if counter(&snap, names::PERMITS_TOTAL, &[("outcome", "granted")]) >= GLOBAL as f64 || Instant::now() > until {
            break snap;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // logai did not warn about the policy (while the positive control,
    // allkeys-lru, does warn).
    let warned = serve_once(&dir.path().join("serve"), &redis);
    let control = RedisServer::start(&[CONF, "--maxmemory", MAXMEMORY, "--maxmemory-policy", "allkeys-lru"]);
    let control_warned = serve_once(&dir.path().join("control"), &control);

    let errors: Vec<(f64, f64)> = [&user, &prober, &filler, &late].iter().map(|c| redis_errors(c)).collect();
    eprintln!(
        "maxmemory {MAXMEMORY} volatile-lru: used_memory {} KiB before the fill; {entries} distinct {} KiB results ({} MiB) written in {:.1} s; \
         evicted_keys {evicted}, {cached_left} results left, used_memory {} KiB after",
        before_fill / 1024,
        ENTRY / 1024,
        FILL_BYTES >> 20,
        fill_took.as_secs_f64(),
        used / 1024
    );
    eprintln!(
        "during the fill: {probes} permit requests all Busy ({GLOBAL}/{GLOBAL} held by 3 processes), the user's {probes} calls all refused; \
         after: {} leases {lease_holders:?}, late permit request: {}, late call of the user: {}; oldest result {}, a result stored now {}",
        lease_holders.len(),
        match &late_permit {
            Err(e) => e.to_string(),
            Ok(g) => format!("granted (shared: {})", g.is_shared()),
        },
        match &late_rate {
            Err(e) => e.to_string(),
            Ok(()) => "allowed".into(),
        },
        if oldest.is_some() { "still cached" } else { "evicted" },
        if newest.is_some() { "served" } else { "missing" },
    );
    eprintln!(
        "coordination keys' TTL (-1 = none, -2 = gone): {ttls:?}; Redis errors (refused, unavailable) per session [user, prober, filler, late]: {errors:?}; took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    eprintln!("logai serve against it logged: {:?}", warned.trim());
    eprintln!("control (allkeys-lru) logged: {:?}", control_warned.trim());

    assert!(evicted > 0, "Redis evicted nothing: the test proves nothing");
    assert!(cached_left < entries, "every result is still cached");
    // Every result missing was evicted. Beside the results, the only keys
    // with a TTL are the time-bucketed metrics (`{prefix}:metrics:w:*`,
    // documented as evictable: a window then reads low); a flush re-creates
    // a bucket, so how many of them went is not a fixed number. The keys
    // that hold the promises (permits, rate state, running totals) are
    // checked below to carry no TTL, so volatile-lru never takes them.
    assert!(
        evicted as usize + cached_left >= entries,
        "results gone without an eviction: {evicted} evicted, {cached_left} of {entries} left"
    );
    assert!(ttls.iter().all(|(_, ttl)| ttl == "-1"), "coordination keys missing (-2) or evictable (a TTL): {ttls:?}");
    assert!(probes >= 3, "too few probes overlapped the fill ({probes})");
    assert_eq!(lease_holders.len(), GLOBAL as usize, "permit leases evicted: {lease_holders:?}");
    for pid in &holder_pids {
        assert!(lease_holders.iter().any(|h| h.starts_with(&format!("{pid}-"))), "holder {pid}'s lease is gone: {lease_holders:?}");
    }
    match late_permit {
        Err(PermitError::Busy { message, .. }) => {
            assert!(message.contains(&format!("{GLOBAL}/{GLOBAL} searches running globally")), "{message}")
        }
        other => panic!("a permit over the global limit after the fill: {other:?}"),
    }
    assert!(late_rate.is_err(), "the user's rate state was evicted");
    assert!(oldest.is_none(), "the oldest result was not evicted");
    assert!(newest.is_some(), "the cache does not work any more");
    assert!(
        errors.iter().all(|(refused, unavailable)| *refused == 0.0 && *unavailable == 0.0),
        "Redis refused or failed operations: {errors:?}"
    );
    // The shared metrics (no TTL) kept every count from before the fill.
    assert_eq!(snap.source, "redis");
    assert_eq!(counter(&snap, names::RATE_LIMITED_TOTAL, &[]), (1 + probes + 1) as f64, "rate-limited calls counted");
    assert_eq!(counter(&snap, names::PERMITS_TOTAL, &[("service", "delta"), ("outcome", "busy")]), probes as f64);
    assert_eq!(counter(&snap, names::PERMITS_TOTAL, &[("outcome", "granted")]), GLOBAL as f64, "the holders' grants");
    assert!(!warned.contains("maxmemory-policy"), "logai warned about the shipped policy: {warned}");
    assert!(control_warned.contains("maxmemory-policy is allkeys-lru"), "the warning check is blind: {control_warned}");

    for mut h in holders {
        h.kill().unwrap();
        h.wait().unwrap();
    }
}
