//! The full system under load: N real `logai serve` processes (default 150,
//! `LOGAI_LOAD_PROCS` overrides) share one real redis-server (shipped
//! config/redis/logai.conf) and run a realistic search mix through MCP.
//!
//! Checked: no call fails; an independent witness polling the lease sets in
//! Redis (its own TCP connection) never sees more than the global or
//! per-service limit; every session's searches are in the shared metrics;
//! repeated queries are answered from the shared cache.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logai::config::{CacheConfig, LimitsConfig, RedisConfig};
use logai::coord::{names, Coordinator};
use logai_e2e::{plugin_dist, sample_services_toml, write_manifest, McpClient, RedisServer};
use serde_json::json;

const GLOBAL: u64 = 6;
const PER_SERVICE: u64 = 3;
const SERVICES: [&str; 3] = ["payments", "auth", "gateway"];
const PATTERNS: [&str; 5] = ["error", "timeout", "fail", "user", "5\\d\\d"];

/// ZCARD over a raw RESP connection.
fn zcard(conn: &mut BufReader<TcpStream>, key: &str) -> u64 {
    let cmd = format!("*2\r\n$5\r\nZCARD\r\n${}\r\n{}\r\n", key.len(), key);
    conn.get_mut().write_all(cmd.as_bytes()).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    line.trim().trim_start_matches(':').parse().unwrap_or_else(|_| panic!("ZCARD reply {line:?}"))
}

#[test]
fn many_serve_processes_behave_as_one_system() {
    assert!(plugin_dist().join("search-tools.wasm").is_file(), "build the plugins first (scripts/build-plugins)");
    let procs: usize = std::env::var("LOGAI_LOAD_PROCS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let calls_per: usize = 4;
    let redis = RedisServer::start(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../config/redis/logai.conf")]);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        // 150 processes start at once on a small machine: give Redis time to
        // answer their first PING (the fallback itself is tested in coord_processes).
        "{}\n[redis]\nurl = \"{}\"\nconnect_timeout_ms = 10000\nop_timeout_ms = 2000\n\n[limits]\nmax_global_searches = {GLOBAL}\nmax_per_service_searches = {PER_SERVICE}\n\
         permit_wait_ms = 300000\nrate_limit_per_user_per_minute = 1000000\nrate_limit_burst = 10000\n",
        sample_services_toml(),
        redis.url()
    );
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);

    // The witness: lease sets as Redis holds them, every 2 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let max_global = Arc::new(AtomicU64::new(0));
    let max_service = Arc::new(AtomicU64::new(0));
    let witness = {
        let (stop, mg, ms) = (stop.clone(), max_global.clone(), max_service.clone());
        let mut conn = BufReader::new(TcpStream::connect(("127.0.0.1", redis.port)).unwrap());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::SeqCst) {
                mg.fetch_max(zcard(&mut conn, "{logai}:permits:global"), Ordering::SeqCst);
                for s in SERVICES {
                    ms.fetch_max(zcard(&mut conn, &format!("{{logai}}:permits:svc:{s}")), Ordering::SeqCst);
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            samples
        })
    };

    let started = Instant::now();
    let errors = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..procs)
        .map(|p| {
            let manifest = manifest.clone();
            let errors = errors.clone();
            std::thread::spawn(move || {
                let mut c = McpClient::serve(&manifest, &[("LOG_LEVEL", "warn"), ("LOGAI_TEST_QUIET", "1")]);
                c.timeout = Duration::from_secs(600);
                c.initialize();
                let mut done = 0u64;
                for k in 0..calls_per {
                    let i = p * calls_per + k;
                    let service = SERVICES[i % 3];
                    let pattern = PATTERNS[(i / 3) % PATTERNS.len()];
                    let r = c.call_tool("search_logs", json!({"service": service, "pattern": pattern, "date": "2026-11-19", "max_results": 20}));
                    match r.get("result") {
                        Some(res) if res.get("isError") != Some(&json!(true)) => done += 1,
                        _ => {
                            eprintln!("process {p}: call failed: {r}");
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                let status = c.close();
                assert!(status.success(), "process {p} exited with {status}");
                done
            })
        })
        .collect();
    let total: u64 = clients.into_iter().map(|h| h.join().expect("client thread")).sum();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let samples = witness.join().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let snap = rt.block_on(async {
        let c = Coordinator::start(
            &RedisConfig { url: Some(redis.url()), ..RedisConfig::default() },
            &LimitsConfig::default(),
            &CacheConfig::default(),
        )
        .await;
        c.snapshot().await
    });
    let searches: f64 = snap.counters.iter().filter(|c| c.name == names::SEARCHES_TOTAL).map(|c| c.value).sum();
    let cached: f64 = snap
        .counters
        .iter()
        .filter(|c| c.name == names::SEARCHES_TOTAL && c.labels.iter().any(|(k, v)| k == "cached" && v == "true"))
        .map(|c| c.value)
        .sum();
    let (mg, ms) = (max_global.load(Ordering::SeqCst), max_service.load(Ordering::SeqCst));
    eprintln!(
        "{procs} logai serve processes, {total} searches in {:.1} s; witness: {samples} samples, max {mg}/{GLOBAL} global, {ms}/{PER_SERVICE} per service; \
         shared metrics: {searches} searches, {cached} from cache ({:.0}%)",
        elapsed.as_secs_f64(),
        100.0 * cached / searches.max(1.0)
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0, "calls failed");
    assert_eq!(total, (procs * calls_per) as u64);
    assert!(mg <= GLOBAL, "witness saw {mg} leases > MAX_GLOBAL_SEARCHES {GLOBAL}");
    assert!(ms <= PER_SERVICE, "witness saw {ms} leases for one service > MAX_PER_SERVICE_SEARCHES {PER_SERVICE}");
    assert_eq!(snap.source, "redis");
    assert_eq!(searches, total as f64, "every session's searches are in the shared metrics");
    assert!(cached > 0.0, "repeated queries were answered from the shared cache");
}
