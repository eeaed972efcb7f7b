-- Generic cell rate algorithm, every user in one sorted set: member = user,
-- score = theoretical arrival time (ms, Redis clock). The set has no TTL, so
-- under memory pressure `volatile-lru` never evicts it: a full cache must not
-- hand a throttled user a fresh burst (per-user keys with a TTL were evicted
-- within a second by a cache being filled). Users back to idle (arrival
-- time passed) are removed on every call, so it holds only users who called
-- within the last burst window.
-- KEYS[1] the set; ARGV[1] user, ARGV[2] emission interval ms, ARGV[3] burst
-- tolerance ms. Returns {1, "0"} when allowed, {0, retry_after_ms} when not.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local user, interval, tolerance = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local tat = tonumber(redis.call('ZSCORE', KEYS[1], user) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tostring(tat - now - tolerance)}
end
redis.call('ZADD', KEYS[1], tat + interval, user)
return {1, '0'}
