//! Per-user rate limit: GCRA, in Redis (one sorted set for every user, no
//! TTL, Lua) or in process during an outage.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::names::{self, RedisOp};
use super::Coordinator;

static GCRA: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/rate_gcra.lua")));

/// A call refused by the per-user rate limit; `retry_after` says when the
/// next call will be accepted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "rate limited: {per_minute} calls/minute per user (RATE_LIMIT_PER_USER_PER_MINUTE), bursts of {burst} (RATE_LIMIT_BURST); retry in {:.1} s",
    retry_after.as_secs_f64()
)]
pub struct RateLimited {
    pub retry_after: Duration,
    pub per_minute: u32,
    pub burst: u32,
}

/// GCRA parameters: one call per `interval_ms`, up to `burst` calls above
/// the steady rate at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gcra {
    pub interval_ms: f64,
    pub tolerance_ms: f64,
}

impl Gcra {
    /// `None` when the limit is off (`rate_limit_per_user_per_minute = 0`).
    pub(crate) fn new(per_minute: u32, burst: u32) -> Option<Gcra> {
        if per_minute == 0 {
            return None;
        }
        let interval_ms = 60_000.0 / per_minute as f64;
        Some(Gcra { interval_ms, tolerance_ms: interval_ms * burst as f64 })
    }
}

/// The in-process fallback: theoretical arrival times per user.
pub(crate) struct LocalRate {
    epoch: Instant,
    tats: Mutex<HashMap<String, f64>>,
}

impl LocalRate {
    pub(crate) fn new() -> Self {
        LocalRate { epoch: Instant::now(), tats: Mutex::new(HashMap::new()) }
    }

    /// `Ok(())` or the wait before the next allowed call.
    pub(crate) fn check(&self, g: Gcra, user: &str) -> Result<(), Duration> {
        let now = self.epoch.elapsed().as_secs_f64() * 1000.0;
        let mut tats = self.tats.lock();
        if tats.len() > 10_000 {
            tats.retain(|_, tat| *tat > now);
        }
        let tat = tats.get(user).copied().unwrap_or(now).max(now);
        if tat - now > g.tolerance_ms {
            return Err(Duration::from_secs_f64((tat - now - g.tolerance_ms) / 1000.0));
        }
        tats.insert(user.to_string(), tat + g.interval_ms);
        Ok(())
    }
}

impl Coordinator {
    /// Count one call against `user`'s rate (`CallScope.user`). Shared by all
    /// sessions through Redis; local to this process during an outage.
    pub async fn check_rate(&self, user: &str) -> Result<(), RateLimited> {
        let inner = &self.0;
        let Some(g) = inner.gcra else { return Ok(()) };
        let key = inner.keys.rate.clone();
        let redis_answer = inner
            .link
            .run(RedisOp::RateCheck, |mut con| async move {
                let (ok, retry_ms): (i64, String) =
                    GCRA.key(&key).arg(user).arg(g.interval_ms).arg(g.tolerance_ms).invoke_async(&mut con).await?;
                Ok((ok, retry_ms))
            })
            .await;
        let verdict = match redis_answer {
            Some((1, _)) => Ok(()),
            Some((_, retry_ms)) => Err(Duration::from_secs_f64(retry_ms.parse::<f64>().unwrap_or(g.interval_ms).max(0.0) / 1000.0)),
            None => inner.local_rate.check(g, user),
        };
        verdict.map_err(|retry_after| {
            inner.metrics.incr(names::RATE_LIMITED_TOTAL, &[], 1.0);
            RateLimited { retry_after, per_minute: inner.limits.rate_limit_per_user_per_minute, burst: inner.limits.rate_limit_burst }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_gcra_allows_burst_then_spaces_calls() {
        let g = Gcra::new(60, 2).unwrap(); // 1/s, 2 extra at once
        let r = LocalRate::new();
        assert!(r.check(g, "u").is_ok());
        assert!(r.check(g, "u").is_ok());
        assert!(r.check(g, "u").is_ok());
        let wait = r.check(g, "u").unwrap_err();
        // Due within a second of the first call (less however long these took).
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(1000), "{wait:?}");
        // Other users are not affected.
        assert!(r.check(g, "v").is_ok());
    }

    #[test]
    fn message_names_the_limit() {
        let e = RateLimited { retry_after: Duration::from_millis(1200), per_minute: 120, burst: 30 };
        assert_eq!(
            e.to_string(),
            "rate limited: 120 calls/minute per user (RATE_LIMIT_PER_USER_PER_MINUTE), bursts of 30 (RATE_LIMIT_BURST); retry in 1.2 s"
        );
    }
}
