//! The shared result cache: values under `{prefix}:cache:<sha256 of key>`
//! (in the coordination hash tag, with the size accounting) with a TTL, or
//! an LRU bounded by bytes in process during an outage.
//!
//! In Redis, `cache.max_size_mb` holds by logai's own accounting, whatever
//! the server's `maxmemory`: one script per put (`lua/cache_put.lua`)
//! stores the value, records its size and store time, forgets entries that
//! are gone and evicts the oldest until the values fit (docs/coordination.md,
//! "The cache's size").

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::names::{self, RedisOp};
use super::Coordinator;

/// Marks a stored value as LZ4-compressed (a block with the raw length
/// before it). Answers are JSON and compress several times over, so
/// `max_entry_kb` and `max_size_mb` hold that many times more; raw
/// values never start with this (JSON starts with `{` or `[`).
const PACKED: &[u8; 4] = b"\0LZ4";
/// Values shorter than this are stored as they are.
const PACK_FROM: usize = 512;
/// A stored value inflates to at most this many times `max_entry_kb`
/// (guards the allocation against a corrupt length).
const MAX_RATIO: u64 = 64;
/// Most accounted entries one put may evict or forget: bounds the script's
/// time in Redis (a few microseconds each); a put that could not make room
/// within it stores nothing and the next one goes on.
const EVICT_BUDGET: u32 = 256;

static CACHE_PUT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua/cache_put.lua")));

impl super::Keys {
    /// The cache's size accounting (`lua/cache_put.lua`): sizes (hash),
    /// store order (sorted set), state (total bytes, sweep position). No
    /// TTL, in the coordination hash tag like the values they count.
    fn cache_accounting(&self) -> [String; 3] {
        let tag = format!("{{{}}}", self.prefix);
        [format!("{tag}:cache-cap:sizes"), format!("{tag}:cache-cap:order"), format!("{tag}:cache-cap:state")]
    }
}

/// The value as stored: compressed when that pays.
fn pack(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if value.len() < PACK_FROM || value.len() > u32::MAX as usize {
        return value.into();
    }
    let block = lz4_flex::block::compress(value);
    if block.len() + 8 >= value.len() {
        return value.into();
    }
    let mut out = Vec::with_capacity(8 + block.len());
    out.extend_from_slice(PACKED);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(&block);
    out.into()
}

/// The value a stored one holds; `None` when it is packed and does not inflate.
fn unpack(stored: Vec<u8>, max_entry_kb: u64) -> Option<Vec<u8>> {
    if !stored.starts_with(PACKED) || stored.len() < 8 {
        return Some(stored);
    }
    let len = u32::from_le_bytes(stored[4..8].try_into().ok()?) as usize;
    if len as u64 > max_entry_kb.saturating_mul(1024).saturating_mul(MAX_RATIO) {
        return None;
    }
    lz4_flex::block::decompress(&stored[8..], len).ok()
}

/// The hex sha256 of a cache key (what the Redis key is named after).
pub fn cache_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
    seq: u64,
}

/// An LRU bounded by total bytes (keys + values), with per-entry expiry.
pub(crate) struct LruBytes {
    map: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    bytes: usize,
    cap: usize,
    next: u64,
}

impl LruBytes {
    pub(crate) fn new(cap: usize) -> Self {
        LruBytes { map: HashMap::new(), order: BTreeMap::new(), bytes: 0, cap, next: 0 }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.map.remove(key) {
            self.order.remove(&e.seq);
            self.bytes -= key.len() + e.value.len();
        }
    }

    pub(crate) fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        let expired = self.map.get(key)?.expires <= now;
        if expired {
            self.remove(key);
            return None;
        }
        self.next += 1;
        let seq = self.next;
        let e = self.map.get_mut(key)?;
        self.order.remove(&e.seq);
        e.seq = seq;
        self.order.insert(seq, key.to_string());
        Some(e.value.clone())
    }

    pub(crate) fn put(&mut self, key: &str, value: &[u8], ttl: Duration) {
        self.remove(key);
        let size = key.len() + value.len();
        if size > self.cap {
            return;
        }
        while self.bytes + size > self.cap {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= oldest.len() + e.value.len();
            }
        }
        self.next += 1;
        let seq = self.next;
        self.order.insert(seq, key.to_string());
        self.map.insert(key.to_string(), Entry { value: value.to_vec(), expires: Instant::now() + ttl, seq });
        self.bytes += size;
    }
}

impl Coordinator {
    /// Look up a cached result. `key` must describe everything the result
    /// depends on (every parameter, the absolute window, each file's
    /// identity/size/mtime) — then an entry can never be stale.
    pub async fn cache_get(&self, key: &str) -> Option<Vec<u8>> {
        let found = self.cache_peek(key).await;
        let name = if found.is_some() { names::CACHE_HITS_TOTAL } else { names::CACHE_MISSES_TOTAL };
        self.0.metrics.incr(name, &[], 1.0);
        found
    }

    /// [`Coordinator::cache_get`] without counting a hit or miss: for
    /// auxiliary entries (a search's resumable tail) read beside an answer.
    pub async fn cache_peek(&self, key: &str) -> Option<Vec<u8>> {
        let inner = &self.0;
        if !inner.cache_cfg.enabled {
            return None;
        }
        let hash = cache_key_hash(key);
        let rkey = inner.keys.cache(&hash);
        let from_redis = inner
            .link
            .run(RedisOp::CacheGet, |mut con| async move { redis::cmd("GET").arg(&rkey).query_async::<Option<Vec<u8>>>(&mut con).await })
            .await;
        let stored = match from_redis {
            Some(v) => v,
            None => inner.local_cache.lock().get(&hash),
        }?;
        unpack(stored, inner.cache_cfg.max_entry_kb)
    }

    /// Store a result for `cache.ttl_minutes`. Values above
    /// `cache.max_entry_kb` or `cache.max_size_mb` are not cached (counted
    /// as skipped). In Redis the oldest values are evicted to keep the
    /// values within `cache.max_size_mb` (counted as evicted). Whether it
    /// was stored (in Redis, or in process while Redis is away).
    pub async fn cache_put(&self, key: &str, value: &[u8]) -> bool {
        let inner = &self.0;
        if !inner.cache_cfg.enabled || inner.cache_cfg.ttl_minutes == 0 {
            return false;
        }
        let value = pack(value);
        let value = &value[..];
        let cap = inner.cache_cfg.max_size_mb.saturating_mul(1024 * 1024);
        if value.len() as u64 > inner.cache_cfg.max_entry_kb.saturating_mul(1024) || value.len() as u64 > cap {
            inner.metrics.incr(names::CACHE_SKIPPED_TOTAL, &[], 1.0);
            return false;
        }
        let ttl = Duration::from_secs(inner.cache_cfg.ttl_minutes.saturating_mul(60));
        let hash = cache_key_hash(key);
        let rkey = inner.keys.cache(&hash);
        let [sizes, order, state] = inner.keys.cache_accounting();
        let ttl_ms = ttl.as_millis() as u64;
        let reply = inner
            .link
            .run(RedisOp::CachePut, |mut con| async move {
                CACHE_PUT
                    .key(&rkey)
                    .key(&sizes)
                    .key(&order)
                    .key(&state)
                    .arg(value)
                    .arg(ttl_ms)
                    .arg(cap)
                    .arg(EVICT_BUDGET)
                    .invoke_async::<(i64, u64, u64)>(&mut con)
                    .await
            })
            .await;
        match reply {
            Some((stored, evicted, _bytes)) => {
                if evicted > 0 {
                    inner.metrics.incr(names::CACHE_EVICTED_TOTAL, &[], evicted as f64);
                }
                if stored != 1 {
                    // No room made within the budget: the next put goes on.
                    inner.metrics.incr(names::CACHE_SKIPPED_TOTAL, &[], 1.0);
                }
                stored == 1
            }
            None => {
                inner.local_cache.lock().put(&hash, value, ttl);
                true
            }
        }
    }

    /// Add `member` to the list under `index` (newest first, at most `keep`
    /// members, the oldest dropped; a member added again moves to the
    /// front). The list is cache data: it lives for `cache.ttl_minutes` from
    /// its last addition and may be evicted like any entry. Atomic in Redis,
    /// so concurrent sessions never lose each other's members.
    pub async fn cache_index_add(&self, index: &str, member: &str, keep: usize) {
        let inner = &self.0;
        if !inner.cache_cfg.enabled || inner.cache_cfg.ttl_minutes == 0 || keep == 0 {
            return;
        }
        let ttl = Duration::from_secs(inner.cache_cfg.ttl_minutes.saturating_mul(60));
        let hash = cache_key_hash(index);
        let rkey = inner.keys.cache(&hash);
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        let ttl_ms = ttl.as_millis() as u64;
        let added = inner
            .link
            .run(RedisOp::CacheIndexAdd, |mut con| async move {
                INDEX_ADD.key(&rkey).arg(now_us).arg(member).arg(keep).arg(ttl_ms).invoke_async::<i64>(&mut con).await
            })
            .await;
        if added.is_none() {
            let mut local = inner.local_cache.lock();
            let mut members: Vec<String> = local.get(&hash).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            members.retain(|m| m != member);
            members.insert(0, member.to_string());
            members.truncate(keep);
            if let Ok(bytes) = serde_json::to_vec(&members) {
                local.put(&hash, &bytes, ttl);
            }
        }
    }

    /// The members under `index`, newest first (none when it is gone).
    pub async fn cache_index(&self, index: &str) -> Vec<String> {
        let inner = &self.0;
        if !inner.cache_cfg.enabled {
            return Vec::new();
        }
        let hash = cache_key_hash(index);
        let rkey = inner.keys.cache(&hash);
        let from_redis = inner
            .link
            .run(RedisOp::CacheIndex, |mut con| async move {
                redis::cmd("ZREVRANGE").arg(&rkey).arg(0).arg(-1).query_async::<Vec<String>>(&mut con).await
            })
            .await;
        match from_redis {
            Some(v) => v,
            None => inner.local_cache.lock().get(&hash).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default(),
        }
    }
}

/// Add a member scored by time, keep the newest ARGV[3], refresh the TTL.
static INDEX_ADD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[3])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return n
",
    )
});

/// The right to fill a cache entry that other sessions may be waiting for
/// (see [`Coordinator::cache_get_or_claim`]). Dropping it (after
/// `cache_put`, or without storing anything) lets the waiters go on.
pub struct CacheClaim {
    lock: Option<(String, String)>,
    coord: Coordinator,
    /// Stops the lock's renewal when the claim goes.
    renewal: Option<tokio_util::sync::CancellationToken>,
}

impl std::fmt::Debug for CacheClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheClaim").field("locked", &self.lock.is_some()).finish()
    }
}

impl CacheClaim {
    /// Whether this session holds the fill lock (others wait for it).
    pub fn is_exclusive(&self) -> bool {
        self.lock.is_some()
    }
}

static UNLOCK: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
});

static RENEW_LOCK: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")
});

/// How long a fill lock outlives its owner's last renewal. The owner renews
/// it every third of this while it searches; an owner that lost Redis (its
/// answer goes to its local cache, its unlock cannot be sent) or whose lock
/// reply was lost stops holding waiters within this, instead of for the
/// whole `max_wait` — the caller's whole budget, so a waiter left waiting
/// that long had no time left to search itself and its call failed.
fn fill_lock_lease(op_timeout: Duration) -> Duration {
    (op_timeout * 4).max(Duration::from_secs(2))
}

impl Drop for CacheClaim {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.cancel();
        }
        if let Some((lock, token)) = self.lock.take() {
            let coord = self.coord.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    coord
                        .0
                        .link
                        .run(
                            RedisOp::CacheUnlock,
                            |mut con| async move { UNLOCK.key(&lock).arg(&token).invoke_async::<i64>(&mut con).await },
                        )
                        .await;
                });
            }
        }
    }
}

impl Coordinator {
    /// A cache lookup that lets only one session search for a missing key:
    /// `Ok(bytes)` on a hit (possibly after waiting, at most `max_wait`, for
    /// another session that is computing the same key), or `Err(claim)`:
    /// search, `cache_put` the result, then drop the claim. Without Redis it
    /// is `cache_get` plus a non-exclusive claim.
    ///
    /// Counts nothing: the caller counts one hit or miss per search
    /// (`logai_cache_hits_total{via}`, `logai_cache_misses_total`), since
    /// a miss here may still be answered from a covering entry.
    pub async fn cache_get_or_claim(&self, key: &str, max_wait: Duration) -> Result<Vec<u8>, CacheClaim> {
        if let Some(v) = self.cache_peek(key).await {
            return Ok(v);
        }
        let inner = &self.0;
        let free = || CacheClaim { lock: None, coord: self.clone(), renewal: None };
        if !inner.cache_cfg.enabled || !inner.link.healthy() {
            return Err(free());
        }
        let lock = format!("{}:lock", inner.keys.cache(&cache_key_hash(key)));
        let token = format!("{}:{}", inner.id, rand::random::<u64>());
        let lease = fill_lock_lease(inner.link.op_timeout).min(max_wait).max(Duration::from_millis(1));
        let lease_ms = lease.as_millis() as u64;
        let (l2, t2) = (lock.clone(), token.clone());
        let got = inner
            .link
            .run(RedisOp::CacheLock, |mut con| async move {
                redis::cmd("SET").arg(&l2).arg(&t2).arg("NX").arg("PX").arg(lease_ms).query_async::<Option<String>>(&mut con).await
            })
            .await;
        match got {
            Some(Some(_)) => {
                let renewal = inner.shutdown.child_token();
                self.renew_fill_lock(lock.clone(), token.clone(), lease, Instant::now() + max_wait, renewal.clone());
                return Err(CacheClaim { lock: Some((lock, token)), coord: self.clone(), renewal: Some(renewal) });
            }
            None => return Err(free()),
            Some(None) => {}
        }
        // Someone else is computing it: wait for the value or for the lock to go.
        let deadline = Instant::now() + max_wait;
        let rkey = inner.keys.cache(&cache_key_hash(key));
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (rk, lk) = (rkey.clone(), lock.clone());
            let state = inner
                .link
                .run(RedisOp::CacheWait, |mut con| async move {
                    redis::pipe().get(&rk).exists(&lk).query_async::<(Option<Vec<u8>>, bool)>(&mut con).await
                })
                .await;
            match state {
                // Read raw: unpacked like any lookup (a packed value that
                // does not inflate is no answer: search).
                Some((Some(v), _)) => return unpack(v, inner.cache_cfg.max_entry_kb).ok_or_else(free),
                Some((None, true)) => continue,
                // The other session stored nothing (or Redis went away): search.
                _ => return Err(free()),
            }
        }
        Err(free())
    }

    /// Keep a fill lock while its claim lives (at most until `until`); stop
    /// at the first renewal that fails or finds the lock gone.
    fn renew_fill_lock(&self, lock: String, token: String, lease: Duration, until: Instant, stop: tokio_util::sync::CancellationToken) {
        let weak = std::sync::Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let lease_ms = lease.as_millis() as u64;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(lease / 3) => {}
                    _ = stop.cancelled() => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                if Instant::now() >= until {
                    return;
                }
                let (lk, tk) = (lock.clone(), token.clone());
                let renewed = inner
                    .link
                    .run(RedisOp::CacheLockRenew, |mut con| async move {
                        RENEW_LOCK.key(&lk).arg(&tk).arg(lease_ms).invoke_async::<i64>(&mut con).await
                    })
                    .await;
                if renewed != Some(1) {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_is_bounded_by_bytes_and_evicts_least_recent() {
        let mut c = LruBytes::new(100);
        c.put("a", &[0; 40], Duration::from_secs(60));
        c.put("b", &[0; 40], Duration::from_secs(60));
        assert!(c.get("a").is_some()); // a is now most recent
        c.put("c", &[0; 40], Duration::from_secs(60));
        assert!(c.get("b").is_none());
        assert!(c.get("a").is_some());
        assert!(c.get("c").is_some());
        assert!(c.bytes() <= 100);
        c.put("huge", &[0; 200], Duration::from_secs(60));
        assert!(c.get("huge").is_none());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn values_are_packed_when_that_pays_and_read_back_whole() {
        let answer = br#"{"file":"/var/log/app.log","line_number":12,"text":"2026-11-23T10:00:00Z ERROR db pool exhausted"}"#.repeat(200);
        let packed = pack(&answer);
        assert!(packed.starts_with(PACKED) && packed.len() * 4 < answer.len(), "{} of {}", packed.len(), answer.len());
        assert_eq!(unpack(packed.into_owned(), 1024).unwrap(), answer);
        // Small or incompressible values are stored as they are, and so are
        // values stored before packing existed.
        assert_eq!(&pack(b"{\"k\":1}")[..], b"{\"k\":1}");
        let noise = logai_test_redis::incompressible(4096, 7);
        assert_eq!(&pack(&noise)[..], &noise[..]);
        assert_eq!(unpack(answer.clone(), 1024).unwrap(), answer);
        // A corrupt length is refused, not allocated.
        let mut bad = pack(&answer).into_owned();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(unpack(bad, 1), None);
    }

    #[test]
    fn lru_entries_expire() {
        let mut c = LruBytes::new(100);
        c.put("a", b"x", Duration::from_millis(0));
        assert!(c.get("a").is_none());
        assert_eq!(c.bytes(), 0);
    }
}
