//! A session stand-in for the coordination suites: one process with its own
//! `Coordinator`, like one `logai serve`, driven from the command line.
//!
//!   coord-holder <redis-url> hold <service>
//!       acquire, print `ACQUIRED shared=<bool>`, then sleep until killed
//!   coord-holder <redis-url> work <millis> <witness-file> <hold-ms>
//!       until <millis> pass: acquire a permit for one of three services,
//!       append `S`/`E` stamps to <witness-file> (O_APPEND) while holding it,
//!       count it in `logai_searches_total`; then shut down (flushing
//!       metrics) and print `DONE <count> mode=<mode>`; any failed call
//!       exits 1.
//!
//! Limits come from COORD_GLOBAL, COORD_SERVICE, COORD_LEASE_MS, COORD_WAIT_MS;
//! the Redis key prefix from COORD_PREFIX (default `e2e`).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logai::call::CancellationToken;
use logai::config::{CacheConfig, LimitsConfig, RedisConfig};
use logai::coord::{names, Coordinator};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn stamp() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args[1].clone();
    let limits = LimitsConfig {
        max_global_searches: env_num("COORD_GLOBAL", 4) as u32,
        max_per_service_searches: env_num("COORD_SERVICE", 2) as u32,
        permit_lease_ms: env_num("COORD_LEASE_MS", 1500),
        permit_wait_ms: env_num("COORD_WAIT_MS", 60_000),
        ..LimitsConfig::default()
    };
    let redis = RedisConfig {
        url: Some(url),
        key_prefix: std::env::var("COORD_PREFIX").unwrap_or_else(|_| "e2e".into()),
        op_timeout_ms: 250,
        connect_timeout_ms: 500,
        max_backoff_ms: env_num("COORD_MAX_BACKOFF_MS", 500),
    };
    let coord = Coordinator::start(&redis, &limits, &CacheConfig::default()).await;
    let never = CancellationToken::new();
    match args[2].as_str() {
        "hold" => {
            let g = coord.acquire(&args[3], &never, |_| {}).await.expect("permit");
            println!("ACQUIRED shared={}", g.is_shared());
            std::io::stdout().flush().unwrap();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(g);
        }
        "work" => {
            let millis: u64 = args[3].parse().unwrap();
            let mut witness = std::fs::OpenOptions::new().append(true).create(true).open(&args[4]).unwrap();
            let hold_ms: u64 = args[5].parse().unwrap();
            let until = Instant::now() + Duration::from_millis(millis);
            let mut count = 0u64;
            let pid = std::process::id() as u64;
            while Instant::now() < until {
                let service = ["alpha", "beta", "gamma"][((pid + count) % 3) as usize];
                if let Err(e) = coord.check_rate(&format!("user{pid}")).await {
                    eprintln!("rate: {e}");
                }
                let g = match coord.acquire(service, &never, |_| {}).await {
                    Ok(g) => g,
                    Err(e) => {
                        eprintln!("acquire failed: {e}");
                        std::process::exit(1);
                    }
                };
                let shared = if g.is_shared() { "r" } else { "l" };
                // One write per line: O_APPEND keeps lines whole across processes.
                witness.write_all(format!("S {service} {} {pid} {shared}\n", stamp()).as_bytes()).unwrap();
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                witness.write_all(format!("E {service} {} {pid} {shared}\n", stamp()).as_bytes()).unwrap();
                g.release().await;
                coord.metrics().incr(names::SEARCHES_TOTAL, &[("service", service), ("cached", "false")], 1.0);
                count += 1;
            }
            let mode = coord.mode();
            coord.shutdown().await;
            println!("DONE {count} recoveries={} mode={mode:?}", coord.redis_recoveries());
        }
        other => panic!("unknown mode {other}"),
    }
}
