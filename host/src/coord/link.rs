//! The connection to Redis and its health: every call has a timeout, a
//! failure marks Redis unhealthy (callers then use local state), and a
//! background task reconnects with exponential backoff and switches back.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::metrics::Metrics;
use super::names::{self, label, ErrorKind as MetricErrorKind, RedisOp, RedisOutcome};
use crate::config::RedisConfig;

/// Shared by every clone of a `Coordinator`.
pub(crate) struct Link {
    conn: Option<ConnectionManager>,
    /// For background work (metrics flush, lease renewal, releases that
    /// missed the call path): its own connection with a longer response
    /// timeout ([`background_timeout`]), so a slow Redis delays that work
    /// instead of failing it, and never switches the call path.
    background: Option<ConnectionManager>,
    /// For the release-notification subscriber (its own connection).
    pub(crate) client: Option<redis::Client>,
    /// Redaction-safe description of the URL (no password).
    pub(crate) target: String,
    healthy: AtomicBool,
    /// Wakes the reconnect task when Redis turns unhealthy.
    wake: Notify,
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_backoff: Duration,
    metrics: Metrics,
    /// Times Redis turned healthy again after an outage (for tests and logs).
    pub(crate) recoveries: AtomicU64,
    policy_warned: AtomicBool,
}

/// Why a call-path operation got no answer from Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Redis is down (or marked so): use local state.
    Unavailable,
    /// No answer within `redis.op_timeout_ms`.
    TimedOut,
    /// Redis answered with an error (e.g. OOM under `noeviction`).
    Refused,
}

/// What a call-path timeout means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnTimeout {
    /// Redis is down for the call path until the reconnect probe answers.
    MarkDown,
    /// The caller retries (idempotent operations on the permit path).
    Retry,
}

/// How long background work waits for Redis: no call waits on it, so a
/// Redis a little slower than `op_timeout_ms` still takes the flush.
pub(crate) fn background_timeout(op_timeout: Duration) -> Duration {
    (op_timeout * 8).max(Duration::from_secs(2))
}

/// The URL with its credentials hidden, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            match rest.rfind('@') {
                Some(at) => format!("{}://***@{}", &url[..i], &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

impl Link {
    /// A link that never talks to Redis (no URL configured).
    pub(crate) fn local_only(metrics: Metrics) -> Arc<Link> {
        Arc::new(Link {
            conn: None,
            background: None,
            client: None,
            target: String::new(),
            healthy: AtomicBool::new(false),
            wake: Notify::new(),
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            metrics,
            recoveries: AtomicU64::new(0),
            policy_warned: AtomicBool::new(false),
        })
    }

    /// Connect (bounded by `connect_timeout_ms`); never fails: a bad URL
    /// means local-only, an unreachable Redis means local until it answers.
    pub(crate) async fn start(cfg: &RedisConfig, metrics: Metrics, shutdown: CancellationToken) -> Arc<Link> {
        let url = match cfg.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None => {
                info!("redis.url is not set: limits, cache, rate limits and metrics are local to this session");
                return Link::local_only(metrics);
            }
        };
        let target = redact(&url);
        let op_timeout = Duration::from_millis(cfg.op_timeout_ms.max(1));
        let connect_timeout = Duration::from_millis(cfg.connect_timeout_ms.max(1));
        let max_backoff = Duration::from_millis(cfg.max_backoff_ms.max(10));
        let client = match redis::Client::open(url.as_str()) {
            Ok(c) => c,
            Err(e) => {
                warn!(redis = %target, error = %e, "redis.url is not a usable Redis URL; using local state only");
                return Link::local_only(metrics);
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(max_backoff);
        let background_config = config.clone().set_response_timeout(Some(background_timeout(op_timeout)));
        let conns = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .and_then(|c| Ok((c, ConnectionManager::new_lazy_with_config(client.clone(), background_config)?)));
        let (conn, background) = match conns {
            Ok(c) => c,
            Err(e) => {
                warn!(redis = %target, error = %e, "cannot set up a Redis connection; using local state only");
                return Link::local_only(metrics);
            }
        };
        let link = Arc::new(Link {
            conn: Some(conn),
            background: Some(background),
            client: Some(client),
            target,
            healthy: AtomicBool::new(false),
            wake: Notify::new(),
            op_timeout,
            connect_timeout,
            max_backoff,
            metrics,
            recoveries: AtomicU64::new(0),
            policy_warned: AtomicBool::new(false),
        });
        match link.probe().await {
            Ok(()) => {
                link.healthy.store(true, Ordering::SeqCst);
                info!(redis = %link.target, "coordinating with other sessions through Redis");
            }
            Err(why) => {
                warn!(redis = %link.target, error = %why, "Redis is unreachable; using local state and reconnecting in the background");
            }
        }
        tokio::spawn(reconnect_loop(link.clone(), shutdown));
        link
    }

    /// Whether a Redis URL is configured at all.
    pub(crate) fn configured(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether operations currently go to Redis.
    pub(crate) fn healthy(&self) -> bool {
        self.conn.is_some() && self.healthy.load(Ordering::SeqCst)
    }

    /// Run one Redis operation under the operation timeout. `None` means
    /// "use local state for this operation" (Redis down, slow, or refusing).
    pub(crate) async fn run<T, F, Fut>(&self, op: RedisOp, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.call(op, OnTimeout::MarkDown, f).await.ok()
    }

    /// [`Link::run`], telling why it failed and choosing what a timeout
    /// means: the permit path retries one before it calls Redis down.
    pub(crate) async fn call<T, F, Fut>(&self, op: RedisOp, on_timeout: OnTimeout, f: F) -> Result<T, Failure>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        if !self.healthy() {
            return Err(Failure::Unavailable);
        }
        let con = self.conn.clone().ok_or(Failure::Unavailable)?;
        let started = Instant::now();
        // A `redis` span inside the search that made the round trip (none
        // for work outside a call, e.g. a release handed to the background).
        let span = match tracing::Span::current().is_none() {
            true => tracing::Span::none(),
            false => crate::telemetry::spans::redis(op.as_str()),
        };
        let result = tokio::time::timeout(self.op_timeout, f(con)).instrument(span.clone()).await;
        self.metrics.observe(names::REDIS_OP_DURATION_MS, &[(label::OP, op.as_str())], started.elapsed().as_secs_f64() * 1000.0);
        span.record(
            "outcome",
            match &result {
                Ok(Ok(_)) => RedisOutcome::Ok,
                Ok(Err(e)) if e.is_timeout() => RedisOutcome::Timeout,
                Ok(Err(e)) if connection_level(e) => RedisOutcome::Unavailable,
                Ok(Err(_)) => RedisOutcome::Refused,
                Err(_) => RedisOutcome::Timeout,
            }
            .as_str(),
        );
        let timed_out = || format!("no answer within redis.op_timeout_ms = {} ms", self.op_timeout.as_millis());
        match result {
            Ok(Ok(v)) => Ok(v),
            // The connection manager's own response timeout (the same length).
            Ok(Err(e)) if e.is_timeout() => {
                if on_timeout == OnTimeout::MarkDown {
                    self.mark_unhealthy(op.as_str(), &timed_out());
                }
                Err(Failure::TimedOut)
            }
            Ok(Err(e)) => {
                if connection_level(&e) {
                    self.mark_unhealthy(op.as_str(), &e.to_string());
                    Err(Failure::Unavailable)
                } else {
                    // Redis answered with an error (e.g. OOM): it is up, but this
                    // operation uses local state.
                    self.metrics.incr(names::ERRORS_TOTAL, &[(label::KIND, MetricErrorKind::RedisReply.as_str())], 1.0);
                    warn!(op = op.as_str(), error = %e, "Redis refused an operation; using local state for it");
                    Err(Failure::Refused)
                }
            }
            Err(_) => {
                if on_timeout == OnTimeout::MarkDown {
                    self.mark_unhealthy(op.as_str(), &timed_out());
                }
                Err(Failure::TimedOut)
            }
        }
    }

    /// Background work on its own connection: tried whatever the call
    /// path's health (a flush after an outage is how counts get back), bounded
    /// by [`background_timeout`], and never marks Redis unhealthy: only the
    /// call path and the reconnect probe decide where calls go.
    pub(crate) async fn run_background<T, F, Fut>(&self, op: RedisOp, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let con = self.background.clone()?;
        let started = Instant::now();
        let result = tokio::time::timeout(background_timeout(self.op_timeout), f(con)).await;
        self.metrics.observe(names::REDIS_OP_DURATION_MS, &[(label::OP, op.as_str())], started.elapsed().as_secs_f64() * 1000.0);
        match result {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                debug!(op = op.as_str(), error = %e, "background Redis operation failed; retried later");
                None
            }
            Err(_) => {
                debug!(op = op.as_str(), "background Redis operation timed out; retried later");
                None
            }
        }
    }

    pub(crate) fn mark_unhealthy(&self, op: &str, why: &str) {
        self.metrics.incr(names::ERRORS_TOTAL, &[(label::KIND, MetricErrorKind::RedisUnavailable.as_str())], 1.0);
        if self.healthy.swap(false, Ordering::SeqCst) {
            warn!(redis = %self.target, op, error = %why, "Redis unavailable; using local state until it answers again");
            self.wake.notify_one();
        }
    }

    /// PING (and check the eviction policy once) within the connect timeout.
    async fn probe(&self) -> Result<(), String> {
        let Some(mut con) = self.conn.clone() else { return Err("no Redis configured".into()) };
        let budget = self.connect_timeout + self.op_timeout;
        // The connection manager answers with the outcome of its latest
        // connection attempt, and a failed attempt only starts a new one in
        // the background. So the first PING after Redis came back reports the
        // stale failure of an attempt made while it was still down; asked
        // once more, it waits for the fresh attempt. Without this second ask
        // a session came back one backoff step late (up to max_backoff_ms).
        let mut attempts = 0;
        loop {
            attempts += 1;
            let ping = tokio::time::timeout(budget, redis::cmd("PING").query_async::<String>(&mut con)).await;
            match ping {
                Err(_) => return Err(format!("no answer to PING within {} ms", budget.as_millis())),
                Ok(Err(e)) if e.is_io_error() && attempts == 1 => continue,
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(_)) => break,
            }
        }
        if !self.policy_warned.swap(true, Ordering::SeqCst) {
            self.check_policy(&mut con).await;
        }
        Ok(())
    }

    /// Warn when the server's eviction policy could evict coordination keys
    /// (they carry no TTL) or refuse writes once the cache fills memory.
    async fn check_policy(&self, con: &mut ConnectionManager) {
        let reply =
            tokio::time::timeout(self.op_timeout, redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async::<Vec<String>>(con))
                .await;
        let policy = match reply {
            Ok(Ok(v)) if v.len() >= 2 => v[1].clone(),
            Ok(Ok(_)) => return,
            Ok(Err(e)) => {
                debug!(error = %e, "CONFIG GET maxmemory-policy is not allowed; cannot check the eviction policy");
                return;
            }
            Err(_) => return,
        };
        if let Some(advice) = policy_problem(&policy) {
            warn!(redis = %self.target, maxmemory_policy = %policy, "{advice}");
        } else {
            debug!(maxmemory_policy = %policy, "Redis eviction policy is safe for coordination keys");
        }
    }
}

/// What is wrong with an eviction policy for logai, if anything.
pub(crate) fn policy_problem(policy: &str) -> Option<String> {
    if policy.starts_with("allkeys-") {
        Some(format!(
            "Redis maxmemory-policy is {policy}: under memory pressure Redis may evict permit leases, queues and metrics \
             (they have no TTL), breaking limits across sessions; use volatile-lru (config/redis/logai.conf)"
        ))
    } else if policy == "noeviction" {
        Some(
            "Redis maxmemory-policy is noeviction: once cached results fill maxmemory, every write (permits included) \
             is refused and sessions fall back to local limits; use volatile-lru (config/redis/logai.conf)"
                .to_string(),
        )
    } else {
        None
    }
}

/// Errors that mean the connection (not the command) failed.
fn connection_level(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::Server(k) => matches!(
            k,
            ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown | ServerErrorKind::TryAgain | ServerErrorKind::ClusterDown
        ),
        // An error reply with a code redis-rs does not name (`OOM` when
        // Redis refuses a write at maxmemory): Redis answered, it is up.
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse | ErrorKind::Extension => false,
        _ => true,
    }
}

async fn reconnect_loop(link: Arc<Link>, shutdown: CancellationToken) {
    loop {
        if link.healthy() {
            tokio::select! {
                _ = link.wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        let mut backoff = Duration::from_millis(50).min(link.max_backoff);
        let down_since = Instant::now();
        loop {
            let jitter = Duration::from_millis(rand::random::<u64>() % (backoff.as_millis() as u64 / 4 + 1));
            tokio::select! {
                _ = tokio::time::sleep(backoff + jitter) => {}
                _ = shutdown.cancelled() => return,
            }
            match link.probe().await {
                Ok(()) => {
                    link.healthy.store(true, Ordering::SeqCst);
                    link.recoveries.fetch_add(1, Ordering::SeqCst);
                    info!(redis = %link.target, after_ms = down_since.elapsed().as_millis() as u64, "Redis is back; coordinating through it again");
                    break;
                }
                Err(why) => {
                    debug!(redis = %link.target, error = %why, next_try_ms = backoff.as_millis() as u64, "Redis still unreachable");
                    backoff = (backoff * 2).min(link.max_backoff);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:secret@host:6379/"), "redis://***@host:6379/");
        assert_eq!(redact("rediss://user:pw@h:1"), "rediss://***@h:1");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn flags_unsafe_policies() {
        assert!(policy_problem("allkeys-lru").is_some());
        assert!(policy_problem("noeviction").is_some());
        assert!(policy_problem("volatile-lru").is_none());
        assert!(policy_problem("volatile-ttl").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_probe_after_redis_is_back_finds_it() {
        let mut r = crate::coord::tests::RedisServer::start(&[]);
        let cfg =
            RedisConfig { url: Some(r.url()), key_prefix: "t".into(), op_timeout_ms: 250, connect_timeout_ms: 300, max_backoff_ms: 400 };
        let stop = CancellationToken::new();
        let link = Link::start(&cfg, Metrics::new(), stop.clone()).await;
        stop.cancel(); // no background reconnect: only the probes below
        assert!(link.healthy());
        r.kill();
        let ping = |mut c: ConnectionManager| async move { redis::cmd("PING").query_async::<String>(&mut c).await };
        assert!(link.run(RedisOp::Ping, ping).await.is_none());
        assert!(!link.healthy());
        assert!(link.probe().await.is_err(), "Redis is down");
        // The reconnect attempt that probe started fails too (Redis is still
        // down); the manager keeps that failure until asked again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        r.spawn();
        assert_eq!(link.probe().await, Ok(()), "one probe after the restart");
    }
}
