//! Coordination micro-benchmarks (run by scripts/bench-coord): each Redis
//! operation against its local-state baseline, measured in the same run on
//! the same machine, against a real redis-server on loopback.
//!
//!   coord-bench [iterations]

use std::time::{Duration, Instant};

use logai::call::CancellationToken;
use logai::config::{CacheConfig, LimitsConfig, RedisConfig};
use logai::coord::{Coordinator, Mode};
use logai_e2e::RedisServer;

struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(v[((v.len() as f64 - 1.0) * q).round() as usize]);
    Stats { p50: at(0.5), p99: at(0.99), mean: v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64 }
}

async fn time<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..(n / 10).max(10) {
        f(i).await; // warm up
    }
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed());
    }
    stats(v)
}

fn row(op: &str, r: &Stats, l: &Stats) {
    println!(
        "| {op} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}x |",
        r.p50,
        r.p99,
        l.p50,
        l.p99,
        r.p99 - l.p99,
        r.mean / l.mean.max(1e-6)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let redis = RedisServer::start(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../config/redis/logai.conf")]);
    let limits = LimitsConfig { rate_limit_per_user_per_minute: 1_000_000_000, ..LimitsConfig::default() };
    let cache = CacheConfig::default();
    let rcfg = RedisConfig { url: Some(redis.url()), ..RedisConfig::default() };
    let r = Coordinator::start(&rcfg, &limits, &cache).await;
    let l = Coordinator::start(&RedisConfig::default(), &limits, &cache).await;
    assert_eq!(r.mode(), Mode::Redis);
    assert_eq!(l.mode(), Mode::LocalOnly);
    let never = CancellationToken::new();
    println!("coord-bench: {n} sequential operations each; redis-server {} on loopback (config/redis/logai.conf); baseline = local mode (no Redis), same process, same run", redis.cli(&["INFO", "server"]).lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap_or("?").trim());
    println!();
    println!("| operation | Redis p50 ms | Redis p99 ms | local p50 ms | local p99 ms | added p99 ms | mean ratio |");
    println!("|---|---|---|---|---|---|---|");

    let rs = time(n, |_| async { r.acquire("svc", &never, |_| {}).await.unwrap().release().await }).await;
    let ls = time(n, |_| async { l.acquire("svc", &never, |_| {}).await.unwrap().release().await }).await;
    row("permit acquire+release", &rs, &ls);

    let rs = time(n, |i| {
        let r = &r;
        async move { r.check_rate(&format!("user{}", i % 50)).await.unwrap() }
    })
    .await;
    let ls = time(n, |i| {
        let l = &l;
        async move { l.check_rate(&format!("user{}", i % 50)).await.unwrap() }
    })
    .await;
    row("rate check (GCRA)", &rs, &ls);

    for (label, size) in [("1 KiB", 1024usize), ("64 KiB", 64 * 1024)] {
        let value = vec![b'x'; size];
        let v = &value;
        let rs = time(n, |i| {
            let r = &r;
            async move {
                r.cache_put(&format!("k{size}-{}", i % 200), v).await;
            }
        })
        .await;
        let ls = time(n, |i| {
            let l = &l;
            async move {
                l.cache_put(&format!("k{size}-{}", i % 200), v).await;
            }
        })
        .await;
        row(&format!("cache put {label}"), &rs, &ls);
        let rs = time(n, |i| {
            let r = &r;
            async move { assert!(r.cache_get(&format!("k{size}-{}", i % 200)).await.is_some()) }
        })
        .await;
        let ls = time(n, |i| {
            let l = &l;
            async move { assert!(l.cache_get(&format!("k{size}-{}", i % 200)).await.is_some()) }
        })
        .await;
        row(&format!("cache get {label} (hit)"), &rs, &ls);
    }
    let rs = time(n, |i| {
        let r = &r;
        async move { assert!(r.cache_get(&format!("miss-{i}")).await.is_none()) }
    })
    .await;
    let ls = time(n, |i| {
        let l = &l;
        async move { assert!(l.cache_get(&format!("miss-{i}")).await.is_none()) }
    })
    .await;
    row("cache get (miss)", &rs, &ls);

    let rs = time(n, |_| async { r.metrics().incr("bench_total", &[("k", "v")], 1.0) }).await;
    let ls = time(n, |_| async { l.metrics().incr("bench_total", &[("k", "v")], 1.0) }).await;
    row("metrics incr (never waits on Redis)", &rs, &ls);

    // Contended: 4 sessions x 10 tasks, 20 global / 5 per service, 1 ms holds.
    println!();
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(Coordinator::start(&rcfg, &limits, &cache).await);
    }
    let per_task = (n / 40).max(10);
    let t = Instant::now();
    let mut handles = Vec::new();
    for (si, s) in sessions.iter().enumerate() {
        for ti in 0..10 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let never = CancellationToken::new();
                let mut waits = Vec::new();
                for k in 0..per_task {
                    let svc = ["a", "b", "c", "d", "e"][(si + ti + k) % 5];
                    let w = Instant::now();
                    let g = s.acquire(svc, &never, |_| {}).await.unwrap();
                    waits.push(w.elapsed());
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    g.release().await;
                }
                waits
            }));
        }
    }
    let mut waits = Vec::new();
    for h in handles {
        waits.extend(h.await.unwrap());
    }
    let total = waits.len();
    let st = stats(waits);
    println!(
        "contended: 4 sessions x 10 tasks, {total} permits (1 ms holds, limits 20 global / 5 per service) in {:.2} s = {:.0} permits/s; acquire wait p50 {:.3} ms, p99 {:.3} ms",
        t.elapsed().as_secs_f64(),
        total as f64 / t.elapsed().as_secs_f64(),
        st.p50,
        st.p99
    );
    for s in &sessions {
        s.shutdown().await;
    }
    r.shutdown().await;
}
