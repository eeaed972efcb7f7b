//! Cross-session coordination: permits, shared cache, rate limits, shared
//! metrics — Redis with a local fallback. Knows nothing of wasmtime or MCP.
//!
//! Every SSH session is its own `logai` process; a [`Coordinator`] makes
//! them behave as one system. It never fails to start: without a Redis URL
//! it runs on local state; when Redis is unreachable or slow it uses local
//! state for that operation, reconnects in the background with exponential
//! backoff (capped at `redis.max_backoff_ms`) and switches back by itself.
//!
//! Wiring (the search path, in this order): [`Coordinator::check_rate`] →
//! [`Coordinator::cache_get`] → on a miss [`Coordinator::acquire`] → search
//! → [`Coordinator::cache_put`] → drop/[`PermitGuard::release`] the permit.
//! See docs/coordination.md.

mod cache;
mod flush;
mod link;
pub mod metrics;
pub mod metrics_types;
pub mod names;
mod permits;
mod rate;
mod slots;
mod spool;
#[cfg(test)]
mod tests;
pub mod windows;

pub(crate) use link::redact;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use cache::{cache_key_hash, CacheClaim};
pub use metrics::{Metrics, BUCKET_BOUNDS_MS};
pub use metrics_types::*;
pub use permits::{PermitError, PermitGuard, QueueStatus};
pub use rate::RateLimited;

use crate::config::{CacheConfig, LimitsConfig, RedisConfig};
use link::Link;
use metrics::snapshot_from_fields;
use names::{label, PermitScope, RedisOp};

/// Key names. Every key shares the hash tag `{prefix}` so the Lua scripts
/// that touch several of them stay in one slot (Redis Cluster); cache
/// values too, since the put script keeps their size accounting with them.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub global: String,
    pub svc_prefix: String,
    pub queue: String,
    pub queue_deadlines: String,
    pub queue_services: String,
    pub seq: String,
    pub services: String,
    pub metrics: String,
    pub gauges: String,
    /// Process -> the last metrics batch applied (exactly once).
    pub metrics_batches: String,
    /// Process -> when it last flushed (to forget silent processes).
    pub metrics_seen: String,
    pub metrics_epoch: String,
    /// Prefix of the metrics' time buckets (`coord::windows`), `<width>:<start>` after it.
    pub metrics_window: String,
    pub released_channel: String,
    /// Every user's theoretical arrival time (GCRA); no TTL, never evicted.
    pub rate: String,
    prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let tag = format!("{{{prefix}}}");
        Keys {
            global: format!("{tag}:permits:global"),
            svc_prefix: format!("{tag}:permits:svc:"),
            queue: format!("{tag}:permits:queue"),
            queue_deadlines: format!("{tag}:permits:queue:deadlines"),
            queue_services: format!("{tag}:permits:queue:services"),
            seq: format!("{tag}:permits:seq"),
            services: format!("{tag}:permits:services"),
            metrics: format!("{tag}:metrics"),
            gauges: format!("{tag}:metrics:gauges"),
            metrics_batches: format!("{tag}:metrics:batches"),
            metrics_seen: format!("{tag}:metrics:seen"),
            metrics_epoch: format!("{tag}:metrics:epoch"),
            metrics_window: format!("{tag}:metrics:w:"),
            released_channel: format!("{tag}:permits:released"),
            rate: format!("{tag}:rate"),
            prefix: prefix.to_string(),
        }
    }

    pub(crate) fn svc(&self, service: &str) -> String {
        format!("{}{service}", self.svc_prefix)
    }

    /// The five keys the acquire/release scripts take first.
    pub(crate) fn permit_keys(&self, service: &str) -> [String; 5] {
        [self.global.clone(), self.svc(service), self.queue.clone(), self.queue_deadlines.clone(), self.queue_services.clone()]
    }

    pub(crate) fn cache(&self, hash: &str) -> String {
        format!("{{{}}}:cache:{hash}", self.prefix)
    }
}

pub(crate) struct Inner {
    link: Arc<Link>,
    metrics: Metrics,
    keys: Keys,
    limits: LimitsConfig,
    cache_cfg: CacheConfig,
    gcra: Option<rate::Gcra>,
    /// Unique per process: `<pid>-<random>`; holders are `<id>:<n>`.
    id: String,
    next_holder: AtomicU64,
    local_permits: permits::LocalPermits,
    /// Kernel-backed slots: the search caps across every process of the
    /// host; `None` when `limits.slot_dir` is unusable (logged).
    slots: Option<slots::Slots>,
    local_cache: Mutex<cache::LruBytes>,
    local_rate: rate::LocalRate,
    /// Redis leases this process holds: holder -> service.
    held: Mutex<HashMap<String, String>>,
    /// Releases (read) and lease renewals (write) never overlap.
    lease_gate: tokio::sync::RwLock<()>,
    /// Wakes this process's Redis waiters when it releases a permit.
    released: Notify,
    /// Whether the release-notification subscription is live.
    wake_up: std::sync::atomic::AtomicBool,
    /// Metrics batch in flight (number, batch) and the last number used.
    flush: tokio::sync::Mutex<Option<(u64, metrics::Batch)>>,
    flush_seq: AtomicU64,
    /// The Redis data epoch this process's metrics were last added to.
    epoch: Mutex<String>,
    /// Ended sessions' undelivered metrics (`None` without Redis or slots).
    spool: Option<spool::Spool>,
    /// One spool delivery at a time in this process.
    draining: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Cross-session coordination. Cheap to clone; every clone shares state.
#[derive(Clone)]
pub struct Coordinator(Arc<Inner>);

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").field("id", &self.0.id).field("mode", &self.mode()).finish()
    }
}

/// Where coordination state lives right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Shared with every session through Redis.
    Redis,
    /// Redis is configured but unreachable: local state until it returns.
    Fallback,
    /// No Redis configured.
    LocalOnly,
}

/// Longest `shutdown` waits for Redis to take this session's last metrics.
pub const SHUTDOWN_FLUSH_WAIT: Duration = Duration::from_millis(5000);

/// How often buffered metrics are added to Redis.
pub const METRICS_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

impl Coordinator {
    /// Start coordinating. Never fails (see the module docs); waits at most
    /// `redis.connect_timeout_ms` (+ `op_timeout_ms`) for Redis.
    pub async fn start(redis: &RedisConfig, limits: &LimitsConfig, cache: &CacheConfig) -> Coordinator {
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let link = Link::start(redis, metrics.clone(), shutdown.clone()).await;
        let id = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let prefix = if redis.key_prefix.trim().is_empty() { "logai" } else { redis.key_prefix.trim() };
        let slots = open_slots(limits, prefix, &link);
        let spool = slots.as_ref().filter(|_| link.configured()).map(|s| spool::Spool::new(s.root().join("spool")));
        let inner = Arc::new(Inner {
            spool,
            draining: tokio::sync::Mutex::new(()),
            slots,
            keys: Keys::new(prefix),
            gcra: rate::Gcra::new(limits.rate_limit_per_user_per_minute, limits.rate_limit_burst),
            local_permits: permits::LocalPermits::new(limits.max_global_searches, limits.max_per_service_searches),
            local_cache: Mutex::new(cache::LruBytes::new((cache.max_size_mb.saturating_mul(1024 * 1024)) as usize)),
            local_rate: rate::LocalRate::new(),
            limits: limits.clone(),
            cache_cfg: cache.clone(),
            id,
            next_holder: AtomicU64::new(1),
            held: Mutex::new(HashMap::new()),
            lease_gate: tokio::sync::RwLock::new(()),
            released: Notify::new(),
            wake_up: std::sync::atomic::AtomicBool::new(false),
            flush: tokio::sync::Mutex::new(None),
            flush_seq: AtomicU64::new(0),
            epoch: Mutex::new(String::new()),
            metrics,
            link,
            shutdown: shutdown.clone(),
        });
        if inner.link.configured() {
            spawn_background(Arc::downgrade(&inner), shutdown);
        }
        Coordinator(inner)
    }

    /// Counters, histograms and gauges; recording never waits on Redis.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn mode(&self) -> Mode {
        if !self.0.link.configured() {
            Mode::LocalOnly
        } else if self.0.link.healthy() {
            Mode::Redis
        } else {
            Mode::Fallback
        }
    }

    /// Times Redis came back after an outage (diagnostics and tests).
    pub fn redis_recoveries(&self) -> u64 {
        self.0.link.recoveries.load(Ordering::SeqCst)
    }

    /// This process's coordination id (holder ids start with it).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The metrics every session has recorded (from Redis, `source =
    /// "redis"`), or this process's own during an outage (`source = "local"`).
    /// Permit gauges are computed at the time of the call.
    pub async fn snapshot(&self) -> MetricsSnapshot {
        let inner = &self.0;
        // Ended sessions' spooled counts belong in the shared view.
        inner.deliver_spool().await;
        let keys = inner.keys.clone();
        let shared = inner
            .link
            .run(RedisOp::MetricsSnapshot, |mut con| async move {
                let (totals, gauges): (HashMap<String, f64>, HashMap<String, f64>) =
                    redis::pipe().hgetall(&keys.metrics).hgetall(&keys.gauges).query_async(&mut con).await?;
                let stats: Vec<redis::Value> = permits::STATS
                    .key(&keys.global)
                    .key(&keys.queue)
                    .key(&keys.queue_deadlines)
                    .key(&keys.queue_services)
                    .key(&keys.services)
                    .arg(&keys.svc_prefix)
                    .invoke_async(&mut con)
                    .await?;
                Ok((totals, gauges, stats))
            })
            .await;
        let (lg, ls) = (inner.limits.max_global_searches.max(1) as f64, inner.limits.max_per_service_searches.max(1) as f64);
        let (mut snap, permit_gauges) = match shared {
            Some((mut totals, gauges, stats)) => {
                for (field, delta) in inner.metrics.pending_fields() {
                    *totals.entry(field).or_insert(0.0) += delta;
                }
                if let Ok(guard) = inner.flush.try_lock() {
                    if let Some((_, batch)) = guard.as_ref() {
                        for (field, delta) in &batch.deltas {
                            *totals.entry(field.clone()).or_insert(0.0) += delta;
                        }
                    }
                }
                let snap = snapshot_from_fields(totals, gauges);
                (snap, parse_stats(&stats))
            }
            None => {
                // Without Redis the slot files are the host-wide count.
                let (g, per) = match &inner.slots {
                    Some(slots) => slots.in_use_all(),
                    None => inner.local_permits.in_use(),
                };
                (
                    inner.metrics.local_snapshot(),
                    (g as f64, inner.local_permits.queue_length() as f64, per.into_iter().map(|(k, v)| (k, v as f64)).collect()),
                )
            }
        };
        let (running, queued, per_service) = permit_gauges;
        let computed = [names::PERMITS_IN_USE, names::PERMITS_LIMIT, names::PERMIT_QUEUE_LENGTH, names::REDIS_UP];
        snap.gauges.retain(|g| !computed.contains(&g.name.as_str()));
        let gauge = |name: &str, labels: &[(&str, &str)], value: f64| GaugeValue {
            name: name.into(),
            help: metrics::help(name).into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
        };
        snap.gauges.push(gauge(names::PERMITS_IN_USE, &[(label::SCOPE, PermitScope::Global.as_str())], running));
        for (svc, n) in &per_service {
            snap.gauges.push(gauge(names::PERMITS_IN_USE, &[(label::SCOPE, PermitScope::Service.as_str()), (label::SERVICE, svc)], *n));
        }
        snap.gauges.push(gauge(names::PERMITS_LIMIT, &[(label::SCOPE, PermitScope::Global.as_str())], lg));
        snap.gauges.push(gauge(names::PERMITS_LIMIT, &[(label::SCOPE, PermitScope::Service.as_str())], ls));
        snap.gauges.push(gauge(names::PERMIT_QUEUE_LENGTH, &[], queued));
        snap.gauges.push(gauge(names::REDIS_UP, &[], if snap.source == "redis" { 1.0 } else { 0.0 }));
        metrics::sort_snapshot(&mut snap);
        snap
    }

    /// What every session recorded in the last `minutes` minutes: the
    /// [`names::WINDOWED`] counters and histograms summed over the time
    /// buckets of [`windows::plan`], from Redis (`source = "redis"`), or
    /// this process's own when Redis is away or not configured (`source =
    /// "local"`). No gauges: [`Coordinator::snapshot`] has the current ones.
    pub async fn window_snapshot(&self, minutes: u32) -> MetricsSnapshot {
        let inner = &self.0;
        let now = windows::now_secs();
        if !inner.link.configured() {
            return inner.metrics.local_window(minutes, now);
        }
        inner.deliver_spool().await;
        let buckets = windows::plan(minutes, now);
        let keys: Vec<String> = buckets.iter().map(|b| format!("{}{}", inner.keys.metrics_window, windows::suffix(*b))).collect();
        let shared = inner
            .link
            .run(RedisOp::MetricsSnapshot, |mut con| async move {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.hgetall(k);
                }
                pipe.query_async::<Vec<HashMap<String, f64>>>(&mut con).await
            })
            .await;
        let Some(hashes) = shared else { return inner.metrics.local_window(minutes, now) };
        // Plus this session's deltas not yet in Redis, as `snapshot` does.
        let mut fields = inner.metrics.pending_window(&buckets);
        if let Ok(guard) = inner.flush.try_lock() {
            if let Some((_, batch)) = guard.as_ref() {
                windows::add_pending(&mut fields, batch.deltas.iter().cloned(), &buckets);
            }
        }
        for (f, v) in hashes.into_iter().flatten() {
            *fields.entry(f).or_insert(0.0) += v;
        }
        snapshot_from_fields(fields, [])
    }

    /// Add buffered metrics to Redis now. `true` when nothing is left
    /// pending (or there is no Redis to flush to).
    pub async fn flush_metrics(&self) -> bool {
        self.0.flush_metrics().await
    }

    /// Release every permit this process holds in Redis, flush metrics and
    /// stop background tasks. Bounded by a few `redis.op_timeout_ms`.
    pub async fn shutdown(&self) {
        let inner = &self.0;
        let held: Vec<(String, String)> = inner.held.lock().iter().map(|(h, s)| (h.clone(), s.clone())).collect();
        for (holder, service) in held {
            inner.release_redis(&holder, &service).await;
        }
        if inner.link.configured() {
            inner.flush_at_exit().await;
        }
        inner.shutdown.cancel();
    }
}

/// The slot directory every session of this domain shares (see `slots`):
/// `limits.slot_dir`, or the default session root's `slots` when it is empty. Unusable
/// means the caps hold per session only, said at error level.
fn open_slots(limits: &LimitsConfig, prefix: &str, link: &Link) -> Option<slots::Slots> {
    let dir = match limits.slot_dir.trim() {
        // Callers without a manifest (tools, tests): the default session root's.
        "" => LimitsConfig::slot_dir_under(std::path::Path::new(&crate::config::ServerConfig::default().session_root)),
        d => std::path::PathBuf::from(d),
    };
    let domain = slots::domain(prefix, link.configured().then_some(link.target.as_str()));
    match slots::Slots::open(&dir, &domain, limits.max_global_searches, limits.max_per_service_searches) {
        Ok(s) => {
            tracing::debug!(dir = %s.root().display(), "search caps held by slot files");
            Some(s)
        }
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "limits.slot_dir is unusable: search caps hold per session only, not across sessions");
            None
        }
    }
}

type PermitStats = (f64, f64, Vec<(String, f64)>);

fn parse_stats(v: &[redis::Value]) -> PermitStats {
    use redis::FromRedisValue;
    let num = |x: &redis::Value| i64::from_redis_value(x.clone()).unwrap_or(0) as f64;
    let running = v.first().map(num).unwrap_or(0.0);
    let queued = v.get(1).map(num).unwrap_or(0.0);
    let mut per = Vec::new();
    let mut i = 2;
    while i + 1 < v.len() {
        if let Ok(name) = String::from_redis_value(v[i].clone()) {
            per.push((name, num(&v[i + 1])));
        }
        i += 2;
    }
    (running, queued, per)
}

/// Subscribes to permit releases so waiters near the head of the queue
/// retry at once instead of at their next poll. Reconnects with backoff.
async fn release_listener(inner: Weak<Inner>, shutdown: CancellationToken) {
    use futures_util::StreamExt;
    let (client, channel, connect_timeout, max_backoff) = {
        let Some(i) = inner.upgrade() else { return };
        let Some(client) = i.link.client.clone() else { return };
        (client, i.keys.released_channel.clone(), i.link.connect_timeout, i.link.max_backoff)
    };
    let mut backoff = Duration::from_millis(50);
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        if let Ok(Ok(mut ps)) = tokio::time::timeout(connect_timeout, client.get_async_pubsub()).await {
            if let Ok(Ok(())) = tokio::time::timeout(connect_timeout, ps.subscribe(&channel)).await {
                backoff = Duration::from_millis(50);
                let mut stream = ps.on_message();
                if let Some(i) = inner.upgrade() {
                    i.wake_up.store(true, Ordering::SeqCst);
                }
                loop {
                    tokio::select! {
                        m = stream.next() => match m {
                            Some(_) => match inner.upgrade() {
                                Some(i) => i.released.notify_waiters(),
                                None => return,
                            },
                            None => break,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
                if let Some(i) = inner.upgrade() {
                    i.wake_up.store(false, Ordering::SeqCst);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}

fn spawn_background(inner: Weak<Inner>, shutdown: CancellationToken) {
    tokio::spawn(release_listener(inner.clone(), shutdown.clone()));
    // Metrics: every second, and never on a call's path.
    let weak = inner.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let Some(inner) = weak.upgrade() else { return };
            if inner.flush_metrics().await {
                inner.deliver_spool().await;
            }
        }
    });
    // Leases: renewed every lease/3 while held.
    tokio::spawn(async move {
        let period = {
            let Some(i) = inner.upgrade() else { return };
            Duration::from_millis((i.limits.permit_lease_ms / 3).max(30))
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let Some(inner) = inner.upgrade() else { return };
            inner.renew_leases().await;
        }
    });
}
