-- Store a cached value and keep the cache's values within CACHE_MAX_SIZE_MB
-- by logai's own accounting, whatever the server's maxmemory (see
-- docs/coordination.md, "The cache's size").
--
-- KEYS[1] the value        STRING, PX ttl
-- KEYS[2] sizes            HASH  value key -> bytes stored
-- KEYS[3] order            ZSET  value key -> store time (µs, strictly increasing)
-- KEYS[4] state            HASH  bytes -> sum of the sizes, sweep -> next rank
--                                to check, last -> the latest store time
-- ARGV: value, ttl ms, cap (bytes), most accounted entries visited per call
-- Returns {stored 0|1, entries evicted, bytes accounted after}
--
-- Accounting can go stale only towards "too much": a value that expired,
-- was evicted by maxmemory or deleted by hand is still counted until it is
-- seen gone (EXISTS 0), which happens when it is the oldest or when the
-- sweep (4 entries per call, in turn) reaches it. Every call makes progress
-- (forgets or evicts at least one entry when over the cap), so a put is
-- never refused for good unless the value alone is over the cap.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local KEY, SIZES, ORDER, STATE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local value, ttl, cap, budget = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local size = string.len(value)
if size > cap then
  -- Never fits: refused before anything is evicted for it.
  return {0, 0, tonumber(redis.call('HGET', STATE, 'bytes') or '0') or 0}
end

-- Drop an entry from the accounting; the bytes it was counted for.
local function forget(m)
  local s = tonumber(redis.call('HGET', SIZES, m) or '0') or 0
  redis.call('HDEL', SIZES, m)
  redis.call('ZREM', ORDER, m)
  return s
end

-- The running total; recomputed from the sizes when it was lost.
local total = tonumber(redis.call('HGET', STATE, 'bytes') or '')
if total == nil then
  total = 0
  for _, s in ipairs(redis.call('HVALS', SIZES)) do
    total = total + (tonumber(s) or 0)
  end
end

-- The value this one replaces (the same key stored again).
total = total - forget(KEY)

-- The sweep: a few entries in turn, forgotten when gone. Entries expire
-- oldest first (one TTL), but maxmemory evicts anywhere.
local sweep = tonumber(redis.call('HGET', STATE, 'sweep') or '0') or 0
local seen = redis.call('ZRANGE', ORDER, sweep, sweep + 3)
for _, m in ipairs(seen) do
  if redis.call('EXISTS', m) == 0 then
    total = total - forget(m)
  else
    sweep = sweep + 1
  end
end
if #seen < 4 then
  sweep = 0
end

-- From the oldest: forget entries that are gone, evict live ones until
-- this value fits.
local evicted, steps = 0, 0
while steps < budget do
  local oldest = redis.call('ZRANGE', ORDER, 0, 0)[1]
  if not oldest then
    -- Nothing accounted: nothing counts (sizes without an order were lost).
    redis.call('DEL', SIZES)
    total = 0
    break
  end
  local live = redis.call('EXISTS', oldest) == 1
  if live and total + size <= cap then
    break
  end
  if live then
    redis.call('UNLINK', oldest)
    evicted = evicted + 1
  end
  total = total - forget(oldest)
  steps = steps + 1
end
if total < 0 then
  total = 0
end

local stored = 0
if total + size <= cap then
  -- Oldest first means in store order: one Redis clock, and never two
  -- entries with one score (ties would sort by name).
  local last = tonumber(redis.call('HGET', STATE, 'last') or '0') or 0
  if now <= last then
    now = last + 1
  end
  redis.call('SET', KEY, value, 'PX', ttl)
  redis.call('HSET', SIZES, KEY, size)
  redis.call('ZADD', ORDER, now, KEY)
  redis.call('HSET', STATE, 'last', now)
  total = total + size
  stored = 1
end
redis.call('HSET', STATE, 'bytes', total, 'sweep', sweep)
return {stored, evicted, total}
