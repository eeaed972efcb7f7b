//! `redis`: the configured Redis answers, how fast, under which eviction
//! policy and with how much memory (docs/coordination.md: `volatile-lru`
//! with a `maxmemory`).

use std::time::{Duration, Instant};

use super::Finding;
use crate::config::Config;
use crate::coord::redact;

pub(super) fn check(config: &Config) -> Vec<Finding> {
    let Some(url) = config.redis.url.as_deref().filter(|u| !u.trim().is_empty()) else {
        return vec![Finding::ok("redis", "not configured: each session keeps its own limits and cache")];
    };
    let target = redact(url);
    let timeout = Duration::from_millis(config.redis.connect_timeout_ms.max(1000));
    let started = Instant::now();
    let mut con = match connect(url, timeout) {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::fail(
            "redis",
            format!("{target} is unreachable: {e}"),
            "start Redis (config/redis/logai.conf) or fix redis.url / REDIS_URL; sessions fall back to local limits and cache meanwhile",
        )]
        }
    };
    let ping = redis::cmd("PING").query::<String>(&mut con).map(|_| started.elapsed());
    let latency = match ping {
        Ok(d) => d,
        Err(e) => {
            return vec![Finding::fail("redis", format!("{target} refuses PING: {e}"), "check redis.url's password and the server's state")]
        }
    };
    let mut out =
        vec![Finding::ok("redis", format!("{target} answers PING in {:.1} ms (connect included)", latency.as_secs_f64() * 1000.0))];
    out.push(policy(&mut con));
    out.push(memory(&mut con));
    out
}

fn connect(url: &str, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let con = redis::Client::open(url)?.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    Ok(con)
}

fn policy(con: &mut redis::Connection) -> Finding {
    let check = "redis:eviction";
    let answer = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query::<Vec<String>>(con);
    match answer.ok().and_then(|v| v.into_iter().nth(1)) {
        None => Finding::warn(check, "CONFIG GET maxmemory-policy is not allowed", "check by hand that maxmemory-policy is volatile-lru"),
        Some(p) if p == "volatile-lru" || p == "volatile-lfu" || p == "volatile-ttl" || p == "volatile-random" => {
            Finding::ok(check, format!("maxmemory-policy {p}: only keys with a TTL (cached answers) are evicted"))
        }
        Some(p) if p.starts_with("allkeys-") => Finding::warn(
            check,
            format!("maxmemory-policy {p} may evict permit leases, queues and metrics (they have no TTL)"),
            "set maxmemory-policy volatile-lru (config/redis/logai.conf)",
        ),
        Some(p) => Finding::warn(
            check,
            format!("maxmemory-policy {p}: once memory is full every write (permits too) is refused"),
            "set maxmemory-policy volatile-lru (config/redis/logai.conf)",
        ),
    }
}

fn memory(con: &mut redis::Connection) -> Finding {
    let check = "redis:memory";
    let info = match redis::cmd("INFO").arg("memory").query::<String>(con) {
        Ok(i) => i,
        Err(e) => return Finding::warn(check, format!("INFO memory failed: {e}"), "check the server's memory by hand"),
    };
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()));
    let used = field("used_memory_human").unwrap_or_else(|| "?".into());
    match field("maxmemory").and_then(|m| m.parse::<u64>().ok()) {
        Some(0) | None => Finding::warn(
            check,
            format!("{used} used, no maxmemory"),
            "set maxmemory (config/redis/logai.conf: 640mb) so the cache cannot grow until the host swaps",
        ),
        Some(_) => Finding::ok(check, format!("{used} used of maxmemory {}", field("maxmemory_human").unwrap_or_default())),
    }
}
