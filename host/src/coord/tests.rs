//! In-module tests against a real `redis-server` (apt `redis-server`),
//! started on a free loopback port with persistence off and killed at the
//! end. When it is not installed these tests fail, naming the fix
//! (scripts/install-test-deps): Rust's runner has no skip, and a Redis test
//! that passes without Redis would prove nothing.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::{CacheConfig, LimitsConfig, RedisConfig};

pub(crate) use logai_test_redis::RedisServer;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn redis_cfg(url: Option<String>) -> RedisConfig {
    RedisConfig { url, key_prefix: "t".into(), op_timeout_ms: 250, connect_timeout_ms: 300, max_backoff_ms: 400 }
}

/// A slot directory of its own: tests run in parallel, and coordinators of
/// one test share the caps only with each other.
pub(crate) fn own_slot_dir() -> String {
    tempfile::tempdir().unwrap().keep().join("slots").display().to_string()
}

fn limits(global: u32, service: u32, wait_ms: u64, lease_ms: u64) -> LimitsConfig {
    LimitsConfig {
        max_global_searches: global,
        max_per_service_searches: service,
        permit_wait_ms: wait_ms,
        permit_lease_ms: lease_ms,
        slot_dir: own_slot_dir(),
        ..LimitsConfig::default()
    }
}

/// A coordinator; limits without a slot directory get one of their own.
async fn coord(url: Option<String>, l: &LimitsConfig) -> Coordinator {
    let mut l = l.clone();
    if l.slot_dir.is_empty() {
        l.slot_dir = own_slot_dir();
    }
    Coordinator::start(&redis_cfg(url), &l, &CacheConfig::default()).await
}

/// Concurrency witness: current and maximum holders per scope.
#[derive(Default)]
struct Witness {
    global: AtomicI64,
    max_global: AtomicI64,
    per: [AtomicI64; 3],
    max_per: [AtomicI64; 3],
}

impl Witness {
    fn enter(&self, svc: usize) {
        let g = self.global.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_global.fetch_max(g, Ordering::SeqCst);
        let s = self.per[svc].fetch_add(1, Ordering::SeqCst) + 1;
        self.max_per[svc].fetch_max(s, Ordering::SeqCst);
    }
    fn leave(&self, svc: usize) {
        self.per[svc].fetch_sub(1, Ordering::SeqCst);
        self.global.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn contention(coords: Vec<Coordinator>, tasks_per: usize, global: i64, per_service: i64) {
    let w = Arc::new(Witness::default());
    let mut handles = Vec::new();
    for (ci, c) in coords.into_iter().enumerate() {
        for t in 0..tasks_per {
            let c = c.clone();
            let w = w.clone();
            handles.push(tokio::spawn(async move {
                let svc = (ci + t) % 3;
                let name = ["alpha", "beta", "gamma"][svc];
                let g = c.acquire(name, &CancellationToken::new(), |_| {}).await.expect("permit within the wait");
                w.enter(svc);
                tokio::time::sleep(Duration::from_millis(3 + (t as u64 * 7) % 11)).await;
                w.leave(svc);
                g.release().await;
            }));
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    let mg = w.max_global.load(Ordering::SeqCst);
    assert!(mg <= global, "global concurrency {mg} > {global}");
    assert!(mg >= 2, "no concurrency at all ({mg}): the test proves nothing");
    for i in 0..3 {
        let m = w.max_per[i].load(Ordering::SeqCst);
        assert!(m <= per_service, "service {i} concurrency {m} > {per_service}");
    }
}

/// The caps are the slot files': a session on Redis and one that lost it
/// (the same deployment: the same Redis target and slot directory) never
/// exceed them together, though each alone would allow the whole cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_and_off_redis_share_the_caps() {
    let r = RedisServer::start(&[]);
    let l = limits(3, 2, 30_000, 2000);
    let on = coord(Some(r.url()), &l).await;
    let lost = coord(Some(r.url()), &l).await;
    // No reconnect loop, and Redis marked unhealthy: every turn is local.
    lost.0.shutdown.cancel();
    lost.0.link.mark_unhealthy("test", "cut off by the test");
    assert_eq!((on.mode(), lost.mode()), (Mode::Redis, Mode::Fallback));
    let g = lost.acquire("alpha", &CancellationToken::new(), |_| {}).await.unwrap();
    assert!(!g.is_shared() && g.holds_slots());
    drop(g);
    contention(vec![on.clone(), lost.clone(), on, lost], 12, 3, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_limits_hold_and_busy_names_the_limit() {
    // Contention with a wait no loaded machine runs out of; the busy
    // answers below with a short one, on the same slots.
    let l = limits(3, 2, 300, 1000);
    let patient = coord(None, &LimitsConfig { permit_wait_ms: 60_000, ..l.clone() }).await;
    contention(vec![patient], 40, 3, 2).await;
    let c = coord(None, &l).await;
    assert_eq!(c.mode(), Mode::LocalOnly);

    let a1 = c.acquire("a", &CancellationToken::new(), |_| {}).await.unwrap();
    let a2 = c.acquire("a", &CancellationToken::new(), |_| {}).await.unwrap();
    assert!(!a1.is_shared());
    let statuses = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = statuses.clone();
    let err = c.acquire("a", &CancellationToken::new(), move |s| s2.lock().push(s)).await.unwrap_err();
    assert!(err.to_string().starts_with("busy: 2/2 searches running for service 'a' (MAX_PER_SERVICE_SEARCHES = 2); waited "), "{err}");
    assert_eq!(statuses.lock()[0].position, 1);
    let b = c.acquire("b", &CancellationToken::new(), |_| {}).await.unwrap();
    let err = c.acquire("c", &CancellationToken::new(), |_| {}).await.unwrap_err();
    assert!(err.to_string().starts_with("busy: 3/3 searches running globally (MAX_GLOBAL_SEARCHES = 3)"), "{err}");
    drop((a1, a2, b));
    // Cancellation ends a wait at once.
    let never = CancellationToken::new();
    let hold: Vec<_> = futures_util::future::join_all((0..2).map(|_| c.acquire("a", &never, |_| {}))).await;
    let cancel = CancellationToken::new();
    let c2 = c.clone();
    let cc = cancel.clone();
    let waiter = tokio::spawn(async move { c2.acquire("a", &cc, |_| {}).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    cancel.cancel();
    assert!(matches!(waiter.await.unwrap(), Err(PermitError::Cancelled)));
    drop(hold);
}

async fn fifo_order(c: &[Coordinator]) {
    let holder = c[0].acquire("svc", &CancellationToken::new(), |_| {}).await.unwrap();
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..6 {
        let cc = c[(i + 1) % c.len()].clone();
        let order = order.clone();
        let queued = Arc::new(tokio::sync::Notify::new());
        let q2 = queued.clone();
        handles.push(tokio::spawn(async move {
            let g = cc
                .acquire("svc", &CancellationToken::new(), move |s| {
                    let _ = s;
                    q2.notify_one();
                })
                .await
                .unwrap();
            order.lock().push(i);
            tokio::time::sleep(Duration::from_millis(5)).await;
            g.release().await;
        }));
        // Wait until this waiter is in the queue before the next arrives.
        queued.notified().await;
    }
    holder.release().await;
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_is_fifo() {
    let l = limits(1, 1, 5000, 1000);
    let c = coord(None, &l).await;
    fifo_order(&[c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limits_hold_across_sessions() {
    let r = RedisServer::start(&[]);
    let l = limits(4, 2, 20_000, 2000);
    let mut coords = Vec::new();
    for _ in 0..6 {
        let c = coord(Some(r.url()), &l).await;
        assert_eq!(c.mode(), Mode::Redis);
        coords.push(c);
    }
    contention(coords.clone(), 25, 4, 2).await;
    // Every permit went back.
    assert_eq!(r.cli(&["ZCARD", "{t}:permits:global"]).trim(), "0");
    assert_eq!(r.cli(&["ZCARD", "{t}:permits:queue"]).trim(), "0");
    let snap = coords[0].snapshot().await;
    assert_eq!(snap.source, "redis");
    for c in &coords {
        c.shutdown().await;
    }
    let snap = coords[0].snapshot().await;
    let granted: f64 = snap.counters.iter().filter(|c| c.name == names::PERMITS_TOTAL).map(|c| c.value).sum();
    assert_eq!(granted, 150.0, "every session's permit counts are in the shared snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_is_fifo_across_sessions() {
    let r = RedisServer::start(&[]);
    let l = limits(1, 1, 10_000, 2000);
    let mut coords = Vec::new();
    for _ in 0..3 {
        coords.push(coord(Some(r.url()), &l).await);
    }
    fifo_order(&coords).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_waiters_of_a_free_service_are_not_blocked() {
    let r = RedisServer::start(&[]);
    let l = limits(3, 1, 30_000, 2000);
    let a = coord(Some(r.url()), &l).await;
    let b = coord(Some(r.url()), &l).await;
    let held = a.acquire("x", &CancellationToken::new(), |_| {}).await.unwrap();
    assert!(held.is_shared());
    let b2 = b.clone();
    let waiter = tokio::spawn(async move { b2.acquire("x", &CancellationToken::new(), |_| {}).await.map(|g| g.is_shared()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Granted while x's holder still holds and x's waiter is queued: were
    // y queued behind x, nothing would free it before its wait ran out.
    let other = b.acquire("y", &CancellationToken::new(), |_| {}).await.expect("service y is not queued behind x");
    drop(other);
    drop(held);
    assert!(waiter.await.unwrap().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_never_puts_back_a_released_permit() {
    let r = RedisServer::start(&[]);
    // Lease 100 ms: renewals every 33 ms race the releases of permits held ~1 ms.
    let c = coord(Some(r.url()), &limits(4, 4, 10_000, 100)).await;
    let mut con = redis::Client::open(r.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let never = CancellationToken::new();
    let until = Instant::now() + Duration::from_secs(2);
    let (mut permits, mut phantoms) = (0, 0u64);
    while Instant::now() < until {
        let g = c.acquire("s", &never, |_| {}).await.unwrap();
        assert!(g.is_shared());
        tokio::time::sleep(Duration::from_millis(1)).await;
        g.release().await;
        permits += 1;
        // Nothing is held now: a lease in Redis is a released one put back.
        let n: u64 = redis::cmd("ZCARD").arg("{t}:permits:global").query_async(&mut con).await.unwrap();
        phantoms = phantoms.max(n);
    }
    assert_eq!(phantoms, 0, "a renewal put back a released lease ({permits} permits)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_holder_and_dead_waiter_are_reclaimed() {
    let r = RedisServer::start(&[]);
    let lease = 1000;
    let l = limits(1, 1, 30_000, lease);
    // A holder "dies": its guard is never released and its renewals stop.
    // Its slot files are its own: a real death gives the kernel slots back
    // at once, and what is tested here is the Redis lease it leaves.
    let dead = coord(Some(r.url()), &LimitsConfig { slot_dir: own_slot_dir(), ..l.clone() }).await;
    let g = dead.acquire("s", &CancellationToken::new(), |_| {}).await.unwrap();
    std::mem::forget(g);
    dead.0.shutdown.cancel();
    let live = coord(Some(r.url()), &l).await;
    let t = Instant::now();
    let g2 = live.acquire("s", &CancellationToken::new(), |_| {}).await.unwrap();
    let took = t.elapsed();
    // Reclaimed once the lease ran out (the wait is 30 s: a lease that
    // never expired would end it as busy), never while it was live.
    assert!(took < Duration::from_secs(15), "reclaimed after {took:?}");
    assert!(took >= Duration::from_millis(lease / 2), "granted while the lease was live ({took:?})");

    // A waiter dies in the queue (its task vanishes without giving up its
    // ticket): the waiter behind it still gets the permit once free.
    let l2 = live.clone();
    let ghost = tokio::spawn(async move { l2.acquire("s", &CancellationToken::new(), |_| {}).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    ghost.abort();
    let other = coord(Some(r.url()), &l).await;
    let o2 = other.clone();
    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        o2.acquire("s", &CancellationToken::new(), |_| {}).await.unwrap();
        t.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    g2.release().await;
    let waited = waiter.await.unwrap();
    // The dead ticket expires within 2 s; a ticket that never did would
    // hold the queue for the whole 30 s wait.
    assert!(waited < Duration::from_secs(15), "dead waiter blocked the queue for {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_shared_and_says_when_to_retry() {
    let r = RedisServer::start(&[]);
    let l = LimitsConfig { rate_limit_per_user_per_minute: 60, rate_limit_burst: 2, ..LimitsConfig::default() };
    let a = coord(Some(r.url()), &l).await;
    let b = coord(Some(r.url()), &l).await;
    assert!(a.check_rate("ann@10.0.0.1").await.is_ok());
    assert!(b.check_rate("ann@10.0.0.1").await.is_ok());
    assert!(a.check_rate("ann@10.0.0.1").await.is_ok());
    let e = b.check_rate("ann@10.0.0.1").await.unwrap_err();
    // One call a second: the next is due within a second of the last
    // (less the time these calls took, however long that was).
    assert!(e.retry_after > Duration::ZERO && e.retry_after <= Duration::from_millis(1000), "{e:?}");
    assert!(e.to_string().starts_with("rate limited: 60 calls/minute per user (RATE_LIMIT_PER_USER_PER_MINUTE)"), "{e}");
    assert!(b.check_rate("bob@10.0.0.2").await.is_ok());
    tokio::time::sleep(e.retry_after + Duration::from_millis(30)).await;
    assert!(a.check_rate("ann@10.0.0.1").await.is_ok());
    // Off when the rate is 0.
    let off = coord(Some(r.url()), &LimitsConfig { rate_limit_per_user_per_minute: 0, ..LimitsConfig::default() }).await;
    for _ in 0..100 {
        off.check_rate("x").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_is_shared_bounded_and_counted() {
    let r = RedisServer::start(&[]);
    let cache = CacheConfig { enabled: true, ttl_minutes: 10, max_size_mb: 1, max_entry_kb: 4 };
    let l = LimitsConfig::default();
    let a = Coordinator::start(&redis_cfg(Some(r.url())), &l, &cache).await;
    let b = Coordinator::start(&redis_cfg(Some(r.url())), &l, &cache).await;
    assert_eq!(b.cache_get("k1").await, None);
    a.cache_put("k1", b"answer").await;
    assert_eq!(b.cache_get("k1").await.as_deref(), Some(&b"answer"[..]));
    let ttl: i64 = r.cli(&["PTTL", &format!("{{t}}:cache:{}", cache_key_hash("k1"))]).trim().parse().unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "cache entries carry the TTL ({ttl})");
    a.cache_put("big", &logai_test_redis::incompressible(5 * 1024, 1)).await;
    assert_eq!(b.cache_get("big").await, None);
    assert_eq!(b.metrics().local_counter(names::CACHE_HITS_TOTAL, &[]), 1.0);
    assert_eq!(b.metrics().local_counter(names::CACHE_MISSES_TOTAL, &[]), 2.0);
    assert_eq!(a.metrics().local_counter(names::CACHE_SKIPPED_TOTAL, &[]), 1.0);
}

/// The cache values present in Redis under the prefix `t`: (count, stored
/// bytes), read in one script over the test's own connection (atomic, so
/// no put or eviction falls between two keys) from the keys themselves:
/// independent of logai's accounting. Locks and question indexes are not
/// values (a lock's name ends in `:lock`, an index is a sorted set).
async fn cache_values_present(con: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    static PRESENT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"
local n, bytes, cursor = 0, 0, '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', '{t}:cache:*', 'COUNT', 1000)
  cursor = page[1]
  for _, k in ipairs(page[2]) do
    local h = string.match(k, '^{t}:cache:(%x+)$')
    if h and string.len(h) == 64 and redis.call('TYPE', k)['ok'] == 'string' then
      n = n + 1
      bytes = bytes + redis.call('STRLEN', k)
    end
  end
until cursor == '0'
return {n, bytes}
",
        )
    });
    PRESENT.invoke_async(con).await.unwrap()
}

/// What logai's accounting says the cache holds (bytes).
fn cache_bytes_accounted(r: &RedisServer) -> u64 {
    r.cli(&["HGET", "{t}:cache-cap:state", "bytes"]).trim().parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_cap_holds_in_redis_without_maxmemory_across_sessions() {
    let r = RedisServer::start(&[]);
    assert_eq!(r.cli(&["CONFIG", "GET", "maxmemory"]).lines().nth(1), Some("0"), "no maxmemory: only logai holds the cap");
    const CAP: u64 = 1024 * 1024;
    let cache = CacheConfig { enabled: true, ttl_minutes: 10, max_size_mb: 1, max_entry_kb: 64 };
    let l = LimitsConfig::default();
    let a = Coordinator::start(&redis_cfg(Some(r.url())), &l, &cache).await;
    let b = Coordinator::start(&redis_cfg(Some(r.url())), &l, &cache).await;
    assert!(a.mode() == Mode::Redis && b.mode() == Mode::Redis);
    let mut watcher = redis::Client::open(r.url()).unwrap().get_multiplexed_async_connection().await.unwrap();

    // Two sessions, two writers each, ~8 MB of values of 8-60 KiB between
    // them, while a witness measures what Redis holds as fast as it can.
    let size = |w: usize, i: usize| 8 * 1024 + (w * 7919 + i * 104_729) % (52 * 1024);
    let writing = CancellationToken::new();
    let witness = {
        let (mut con, writing) = (watcher.clone(), writing.clone());
        tokio::spawn(async move {
            let (mut samples, mut max) = (0u32, 0u64);
            loop {
                let done = writing.is_cancelled();
                let (_, bytes) = cache_values_present(&mut con).await;
                samples += 1;
                max = max.max(bytes);
                if done {
                    return (samples, max);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // Each writer also measures after each of its puts (the others' puts
    // go on meanwhile).
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let c = if w % 2 == 0 { a.clone() } else { b.clone() };
            let mut con = watcher.clone();
            tokio::spawn(async move {
                let (mut stored, mut max) = (0, 0);
                for i in 0..60 {
                    let value = logai_test_redis::incompressible(size(w, i), (w * 1000 + i) as u64);
                    stored += c.cache_put(&format!("w{w}-{i}"), &value).await as u32;
                    max = max.max(cache_values_present(&mut con).await.1);
                }
                (stored, max)
            })
        })
        .collect();
    let (mut stored, mut max) = (0, 0);
    for w in writers {
        let (s, m) = w.await.unwrap();
        stored += s;
        max = max.max(m);
    }
    writing.cancel();
    let (samples, witnessed) = witness.await.unwrap();
    let (samples, max) = (samples + 240, max.max(witnessed));
    let written: u64 = (0..4).flat_map(|w| (0..60).map(move |i| size(w, i) as u64)).sum();
    eprintln!("{written} bytes written in 240 puts ({stored} stored); the witness saw at most {max} bytes in {samples} samples");
    assert!(written > 6 * CAP, "the test writes several times the cap ({written})");
    assert_eq!(stored, 240, "every value fits the cap alone: each put stores");
    assert!(max <= CAP, "{max} bytes of cached values in Redis, over the 1 MiB cap");
    let (n, bytes) = cache_values_present(&mut watcher).await;
    // Evicting only what makes room: the cache stays nearly full.
    assert!(bytes > CAP / 2 && bytes <= CAP, "{bytes} bytes in {n} values after the writes");
    assert_eq!(cache_bytes_accounted(&r), bytes, "logai's accounting matches what Redis holds");
    let evicted = a.metrics().local_counter(names::CACHE_EVICTED_TOTAL, &[]) + b.metrics().local_counter(names::CACHE_EVICTED_TOTAL, &[]);
    assert_eq!(evicted as u64, 240 - n, "every value put and gone was evicted by the cap");

    // Recent entries are readable from the other session; the oldest are gone.
    for i in 0..6 {
        let c = if i % 2 == 0 { &a } else { &b };
        assert!(c.cache_put(&format!("recent-{i}"), &logai_test_redis::incompressible(40 * 1024, 77 + i)).await);
    }
    for i in 0..6 {
        let c = if i % 2 == 0 { &b } else { &a };
        let got = c.cache_get(&format!("recent-{i}")).await;
        assert_eq!(got, Some(logai_test_redis::incompressible(40 * 1024, 77 + i)), "recent-{i} is readable");
    }
    assert_eq!(a.cache_get("w0-0").await, None, "the oldest values were evicted");
    assert!(cache_values_present(&mut watcher).await.1 <= CAP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_cap_accounting_heals_after_evictions_expiry_and_restart() {
    let mut r = RedisServer::start(&[]);
    const CAP: u64 = 1024 * 1024;
    const ENTRY: usize = 50 * 1024;
    let cache = CacheConfig { enabled: true, ttl_minutes: 10, max_size_mb: 1, max_entry_kb: 64 };
    let a = Coordinator::start(&redis_cfg(Some(r.url())), &LimitsConfig::default(), &cache).await;
    let mut watcher = redis::Client::open(r.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let value = |i: u64| logai_test_redis::incompressible(ENTRY, i);
    for i in 0..30 {
        assert!(a.cache_put(&format!("k{i}"), &value(i)).await);
    }
    let (n, bytes) = cache_values_present(&mut watcher).await;
    assert!(bytes <= CAP && n == 20, "{n} values, {bytes} bytes");

    // Values vanish behind logai's back: evicted (DEL), expired (PEXPIRE),
    // the oldest and the newest alike. The accounting forgets them: the
    // next puts store without evicting what is still there, and the
    // accounted total comes back to what Redis holds.
    for i in [10, 11, 12, 20, 25, 28, 29] {
        r.cli(&["DEL", &format!("{{t}}:cache:{}", cache_key_hash(&format!("k{i}")))]);
    }
    for i in [13, 14, 26] {
        r.cli(&["PEXPIRE", &format!("{{t}}:cache:{}", cache_key_hash(&format!("k{i}"))), "1"]);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (n, before) = cache_values_present(&mut watcher).await;
    assert_eq!(n, 10);
    assert!(cache_bytes_accounted(&r) > before, "the accounting still counts what vanished");
    for i in 0..20 {
        assert!(a.cache_put(&format!("small-{i}"), b"x").await);
    }
    let (n, after) = cache_values_present(&mut watcher).await;
    assert_eq!((n, after), (30, before + 20), "nothing was evicted to make room for 20 bytes");
    assert_eq!(cache_bytes_accounted(&r), after, "the sweep forgot every vanished value");
    // The running total itself lost (an allkeys-* policy evicts anything):
    // recomputed from the sizes at the next put.
    r.cli(&["DEL", "{t}:cache-cap:state"]);
    assert!(a.cache_put("small-again", b"y").await);
    assert_eq!(cache_bytes_accounted(&r), after + 1);

    // Redis restarted empty: the accounting starts over with it, and the
    // cache fills to the cap again, no further.
    r.kill();
    r.spawn();
    let mut watcher = redis::Client::open(r.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while cache_values_present(&mut watcher).await.0 == 0 {
        assert!(Instant::now() < until, "the session did not store in the restarted Redis");
        a.cache_put("probe", b"p").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 100..130 {
        assert!(a.cache_put(&format!("k{i}"), &value(i)).await);
    }
    let (n, bytes) = cache_values_present(&mut watcher).await;
    assert!(bytes <= CAP && bytes > CAP - 2 * ENTRY as u64, "{n} values, {bytes} bytes after the restart");
    assert_eq!(cache_bytes_accounted(&r), bytes);
    assert_eq!(a.cache_get("k129").await, Some(value(129)));

    // A value over the cap is refused, and evicts nothing.
    let big = Coordinator::start(
        &redis_cfg(Some(r.url())),
        &LimitsConfig::default(),
        &CacheConfig { enabled: true, ttl_minutes: 10, max_size_mb: 1, max_entry_kb: 4096 },
    )
    .await;
    assert!(!big.cache_put("huge", &logai_test_redis::incompressible(2 * CAP as usize, 5)).await);
    assert_eq!(cache_values_present(&mut watcher).await, (n, bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_indexes_keep_every_concurrent_member_newest_first_bounded() {
    let r = RedisServer::start(&[]);
    let l = LimitsConfig::default();
    let a = coord(Some(r.url()), &l).await;
    let b = coord(Some(r.url()), &l).await;
    // 40 adds from two sessions at once: none lost (atomic in Redis).
    let adds = (0..40).map(|i| {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { c.cache_index_add("q", &format!("m{i}"), 64).await }
    });
    futures_util::future::join_all(adds).await;
    let mut got = b.cache_index("q").await;
    got.sort();
    let mut want: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    // Bounded to `keep`, newest first; adding a member again moves it up.
    for i in 0..5 {
        a.cache_index_add("q2", &format!("n{i}"), 3).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.cache_index_add("q2", "n2", 3).await;
    assert_eq!(b.cache_index("q2").await, ["n2", "n4", "n3"]);
    let ttl: i64 = r.cli(&["PTTL", &format!("{{t}}:cache:{}", cache_key_hash("q2"))]).trim().parse().unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "an index is cache data with the TTL ({ttl})");

    // Without Redis: the same behaviour on local state.
    let local = coord(None, &l).await;
    for i in 0..5 {
        local.cache_index_add("q2", &format!("n{i}"), 3).await;
    }
    local.cache_index_add("q2", "n2", 3).await;
    assert_eq!(local.cache_index("q2").await, ["n2", "n4", "n3"]);
    assert!(local.cache_index("none").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_at_start_then_switches_to_redis() {
    let port = free_port();
    let l = limits(2, 2, 1000, 1000);
    let c = coord(Some(format!("redis://127.0.0.1:{port}/")), &l).await;
    assert_eq!(c.mode(), Mode::Fallback);
    // Everything works on local state meanwhile.
    let g = c.acquire("s", &CancellationToken::new(), |_| {}).await.unwrap();
    assert!(!g.is_shared());
    drop(g);
    c.cache_put("k", b"v").await;
    assert_eq!(c.cache_get("k").await.as_deref(), Some(&b"v"[..]));
    c.check_rate("u").await.unwrap();
    c.metrics().incr("logai_test_total", &[], 5.0);
    assert_eq!(c.snapshot().await.source, "local");
    // Redis appears: the session switches within the backoff cap (400 ms).
    let mut r = RedisServer::start(&[]);
    r.kill();
    r.port = port;
    r.spawn();
    let t = Instant::now();
    while c.mode() != Mode::Redis {
        // Backoff is capped at 400 ms: a session that never came back would stay here.
        assert!(t.elapsed() < Duration::from_secs(30), "still on local state after {:?}", t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let g = c.acquire("s", &CancellationToken::new(), |_| {}).await.unwrap();
    assert!(g.is_shared());
    drop(g);
    // The metrics connection's first try after the outage may report the
    // failed attempt it made while Redis was down; the next one connects.
    let t = Instant::now();
    while !c.flush_metrics().await {
        assert!(t.elapsed() < Duration::from_secs(30), "metrics never reached Redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snap = c.snapshot().await;
    assert_eq!(snap.source, "redis");
    let v = snap.counters.iter().find(|x| x.name == "logai_test_total").map(|x| x.value);
    assert_eq!(v, Some(5.0), "counts made during the outage reach Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_loses_no_counts_and_fails_no_call() {
    let mut r = RedisServer::start(&[]);
    let l = limits(3, 3, 10_000, 1500);
    let a = coord(Some(r.url()), &l).await;
    let b = coord(Some(r.url()), &l).await;
    let calls = Arc::new(AtomicU32::new(0));
    let stop = CancellationToken::new();
    let mut workers = Vec::new();
    for c in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let calls = calls.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                c.check_rate("load").await.ok();
                let g = c.acquire("s", &CancellationToken::new(), |_| {}).await.expect("no call fails");
                c.cache_get("key").await;
                c.metrics().incr("logai_test_calls_total", &[("k", "v")], 1.0);
                c.metrics().observe("logai_test_ms", &[], 3.0);
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                g.release().await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    r.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(a.mode(), Mode::Fallback);
    r.spawn();
    let t = Instant::now();
    while a.mode() != Mode::Redis || b.mode() != Mode::Redis {
        assert!(t.elapsed() < Duration::from_secs(30), "sessions did not return to Redis");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    for w in workers {
        w.await.expect("worker did not fail");
    }
    a.shutdown().await;
    b.shutdown().await;
    let snap = a.snapshot().await;
    assert_eq!(snap.source, "redis");
    let total: f64 = snap.counters.iter().filter(|c| c.name == "logai_test_calls_total").map(|c| c.value).sum();
    assert_eq!(total, calls.load(Ordering::SeqCst) as f64, "every count of both sessions is in Redis");
    let h = snap.histograms.iter().find(|h| h.name == "logai_test_ms").unwrap();
    assert_eq!(h.count as u32, calls.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cache_never_evicts_coordination_keys() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/redis/logai.conf");
    // The shipped config, with a tiny memory cap.
    let r = RedisServer::start(&[conf, "--maxmemory", "4mb"]);
    assert_eq!(r.cli(&["CONFIG", "GET", "maxmemory-policy"]).lines().nth(1), Some("volatile-lru"));
    let cache = CacheConfig { enabled: true, ttl_minutes: 10, max_size_mb: 500, max_entry_kb: 1024 };
    let l = limits(4, 2, 20_000, 2000);
    let mut coords = Vec::new();
    for _ in 0..4 {
        coords.push(Coordinator::start(&redis_cfg(Some(r.url())), &l, &cache).await);
    }
    // Hold two leases across the flood.
    let held_a = coords[0].acquire("alpha", &CancellationToken::new(), |_| {}).await.unwrap();
    let held_b = coords[1].acquire("beta", &CancellationToken::new(), |_| {}).await.unwrap();
    coords[0].metrics().incr("logai_test_kept_total", &[], 1.0);
    assert!(coords[0].flush_metrics().await);
    // 40 MB of cached results into a 4 MB Redis.
    let value = logai_test_redis::incompressible(64 * 1024, 42);
    for i in 0..640 {
        coords[i % 4].cache_put(&format!("key-{i}"), &value).await;
    }
    let info = r.cli(&["INFO", "stats"]);
    let evicted: u64 = info.lines().find_map(|l| l.strip_prefix("evicted_keys:")).unwrap().trim().parse().unwrap();
    assert!(evicted > 500, "cache entries were evicted ({evicted})");
    assert_eq!(r.cli(&["ZCARD", "{t}:permits:global"]).trim(), "2", "leases survived the flood");
    assert!(coords.iter().all(|c| c.mode() == Mode::Redis));
    // Limits still hold, in Redis, with the cache still being filled.
    let filler = {
        let c = coords[3].clone();
        let value = value.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                c.cache_put(&format!("more-{i}"), &value).await;
            }
        })
    };
    drop((held_a, held_b));
    contention(coords.clone(), 20, 4, 2).await;
    filler.await.unwrap();
    let snap = coords[0].snapshot().await;
    assert_eq!(snap.source, "redis");
    assert!(snap.counters.iter().any(|c| c.name == "logai_test_kept_total" && c.value == 1.0), "metrics survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_search_once() {
    let r = RedisServer::start(&[]);
    let l = LimitsConfig::default();
    let mut coords = Vec::new();
    for _ in 0..4 {
        coords.push(coord(Some(r.url()), &l).await);
    }
    let searches = Arc::new(AtomicU32::new(0));
    // An answer large enough to be stored compressed: waiters get it whole.
    let result: Vec<u8> = br#"{"line_number":1,"text":"ERROR db pool exhausted"}"#.repeat(100);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let c = coords[i % 4].clone();
        let (searches, result) = (searches.clone(), result.clone());
        tasks.push(tokio::spawn(async move {
            match c.cache_get_or_claim("same-query", Duration::from_secs(5)).await {
                Ok(v) => v,
                Err(claim) => {
                    searches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(150)).await; // the search
                    c.cache_put("same-query", &result).await;
                    drop(claim);
                    result
                }
            }
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap() == result, "every session got the answer whole");
    }
    assert_eq!(searches.load(Ordering::SeqCst), 1, "one session searched, the others waited for its result");
    // A claimant that stores nothing releases the waiters at once.
    let claim = coords[0].cache_get_or_claim("uncacheable", Duration::from_secs(60)).await.unwrap_err();
    assert!(claim.is_exclusive());
    let c1 = coords[1].clone();
    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        let r = c1.cache_get_or_claim("uncacheable", Duration::from_secs(60)).await;
        (r.is_err(), t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(claim);
    let (searched, waited) = waiter.await.unwrap();
    // At once, not after its 60 s budget (nor the lock's 2 s lease).
    assert!(searched && waited < Duration::from_secs(30), "{waited:?}");
}

/// A TCP relay to a Redis port that can be cut: one session's link breaks
/// while the others keep theirs.
struct Relay {
    port: u16,
    stop: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

impl Relay {
    async fn start(to: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        let (stop2, tasks2) = (stop.clone(), tasks.clone());
        tasks.spawn(async move {
            loop {
                let mut inbound = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap().0,
                    _ = stop2.cancelled() => return,
                };
                let stop = stop2.clone();
                tasks2.spawn(async move {
                    let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        Relay { port, stop, tasks }
    }

    /// Cut every connection and stop listening. When this returns nothing
    /// more passes: the listener and both ends of every relayed connection
    /// are closed (cancelling alone only asks the relay tasks to stop, and a
    /// request sent right after could still be relayed before they did).
    async fn cut(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_lock_whose_owner_lost_redis_does_not_hold_waiters() {
    let r = RedisServer::start(&[]);
    let relay = Relay::start(r.port).await;
    let l = LimitsConfig::default();
    let owner = coord(Some(format!("redis://127.0.0.1:{}/", relay.port)), &l).await;
    let waiter = coord(Some(r.url()), &l).await;
    // The caller's whole budget. The lock's lease (2 s) bounds the wait far
    // below it; the bound checked is half the budget, so a loaded machine
    // cannot fail this test by being slow, only a waiter held for the budget.
    let max_wait = Duration::from_secs(60);
    let claim = owner.cache_get_or_claim("q", max_wait).await.unwrap_err();
    assert!(claim.is_exclusive());
    // The owner loses Redis mid-search: its answer goes to its local cache
    // and its unlock cannot reach Redis.
    relay.cut().await;
    owner.cache_put("q", b"answer").await;
    assert_eq!(owner.mode(), Mode::Fallback);
    drop(claim);
    let t = Instant::now();
    let got = waiter.cache_get_or_claim("q", max_wait).await;
    let waited = t.elapsed();
    assert!(got.is_err(), "nothing was stored in Redis");
    assert!(waited < max_wait / 2, "a waiter waited {waited:?} for a lock its owner could neither fill nor release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_redis_refused_at_exit_are_spooled_and_added_once_by_a_later_session() {
    let r = RedisServer::start(&["--maxmemory-policy", "noeviction"]);
    let l = limits(4, 2, 2_000, 2_000);
    // Every write refused from here on: out of memory.
    assert_eq!(r.cli(&["CONFIG", "SET", "maxmemory", "1"]).trim(), "OK");
    let a = coord(Some(r.url()), &l).await;
    a.metrics().incr("logai_test_spooled_total", &[("k", "v")], 5.0);
    a.metrics().observe("logai_test_spooled_ms", &[], 3.0);
    a.shutdown().await;
    let spool_files = || walk(std::path::Path::new(&l.slot_dir)).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")).count();
    assert_eq!(spool_files(), 1, "the refused counts were spooled");
    let count =
        |snap: &MetricsSnapshot| snap.counters.iter().filter(|c| c.name == "logai_test_spooled_total").map(|c| c.value).sum::<f64>();
    // Still refused: a later session cannot deliver them, and keeps them.
    let b = coord(Some(r.url()), &l).await;
    assert_eq!(count(&b.snapshot().await), 0.0);
    assert_eq!(spool_files(), 1);
    // Redis takes writes again: the next look delivers them, once.
    assert_eq!(r.cli(&["CONFIG", "SET", "maxmemory", "0"]).trim(), "OK");
    let snap = b.snapshot().await;
    assert_eq!(count(&snap), 5.0);
    assert_eq!(snap.histograms.iter().find(|h| h.name == "logai_test_spooled_ms").map(|h| h.count), Some(1));
    assert_eq!(spool_files(), 0, "delivered files are gone");
    let c = coord(Some(r.url()), &l).await;
    assert_eq!(count(&c.snapshot().await), 5.0, "counted once");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The windowed series through Redis: deltas land in the buckets of the
/// time they were recorded, another session reads them by window, buckets
/// carry their TTL, and without Redis the session answers for itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_sum_the_buckets_of_every_session() {
    use names::{label, ERRORS_TOTAL, SEARCHES_TOTAL, SEARCH_DURATION_MS};
    let r = RedisServer::start(&[]);
    let l = limits(4, 2, 1000, 2000);
    let (a, b) = (coord(Some(r.url()), &l).await, coord(Some(r.url()), &l).await);
    let now = windows::now_secs();
    let svc = [(label::SERVICE, "app"), (label::CACHED, "false")];
    for (ago, n) in [(0, 1.0), (30 * 60, 2.0), (3 * 3600, 4.0), (26 * 3600, 8.0)] {
        a.metrics().incr_at(SEARCHES_TOTAL, &svc, n, now - ago);
        a.metrics().observe_at(SEARCH_DURATION_MS, &[(label::SERVICE, "app")], 7.0, now - ago);
    }
    b.metrics().incr_at(ERRORS_TOTAL, &[(label::KIND, "busy")], 1.0, now);
    // Not windowed: in the totals only.
    a.metrics().incr_at("logai_test_plain_total", &[], 1.0, now);
    assert!(a.flush_metrics().await && b.flush_metrics().await);
    let searches = |s: &MetricsSnapshot| s.counters.iter().filter(|c| c.name == SEARCHES_TOTAL).map(|c| c.value).sum::<f64>();
    let observed = |s: &MetricsSnapshot| s.histograms.iter().find(|h| h.name == SEARCH_DURATION_MS).map_or(0, |h| h.count);
    // (minutes, searches, observations): 1 h holds now and 30 min ago, 6 h
    // and 24 h add 3 h ago, nothing holds 26 h ago.
    for (minutes, want, obs) in [(60, 3.0, 2), (360, 7.0, 3), (1440, 7.0, 3)] {
        let w = b.window_snapshot(minutes).await;
        assert_eq!(w.source, "redis");
        assert_eq!((searches(&w), observed(&w)), (want, obs), "window {minutes} min: {w:?}");
        assert!(w.counters.iter().any(|c| c.name == ERRORS_TOTAL && c.value == 1.0), "the other session's error");
        assert!(w.counters.iter().all(|c| c.name != "logai_test_plain_total") && w.gauges.is_empty());
    }
    // The totals still hold everything.
    assert_eq!(searches(&b.snapshot().await), 15.0);
    // Every bucket expires within its keeping; the day-old one is gone.
    let keys = r.cli(&["--scan", "--pattern", "{t}:metrics:w:*"]);
    assert!(keys.lines().count() >= 5, "{keys}");
    for k in keys.lines() {
        let ttl: i64 = r.cli(&["TTL", k]).trim().parse().unwrap();
        let keep = if k.contains(":w:60:") { 2 * 3600 } else { 25 * 3600 };
        assert!(ttl > 0 && ttl <= keep, "{k}: TTL {ttl}");
    }
    // Without Redis: this session's own buckets.
    let local = coord(None, &l).await;
    local.metrics().incr_at(SEARCHES_TOTAL, &svc, 1.0, now);
    local.metrics().incr_at(SEARCHES_TOTAL, &svc, 2.0, now - 3 * 3600);
    let w = local.window_snapshot(60).await;
    assert_eq!((w.source.as_str(), searches(&w)), ("local", 1.0));
    assert_eq!(searches(&local.window_snapshot(1440).await), 3.0);
}
