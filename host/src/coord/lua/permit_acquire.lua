-- Acquire a search permit (global + per service) in one atomic step, or
-- join/keep a place in the FIFO waiters queue.
--
-- KEYS[1] global leases   ZSET holder -> lease expiry (ms)
-- KEYS[2] service leases  ZSET holder -> lease expiry (ms)
-- KEYS[3] queue           ZSET ticket -> arrival sequence
-- KEYS[4] queue deadlines ZSET ticket -> heartbeat expiry (ms)
-- KEYS[5] queue services  HASH ticket -> service
-- KEYS[6] sequence        STRING counter
-- KEYS[7] services        SET of service names seen (for gauges)
-- ARGV: svc key prefix, service, holder (= ticket), global limit,
--       service limit, lease ms, waiter ttl ms, wake channel
-- Returns {granted 0|1, running global, running service, position, queue length}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local G, S, Q, QD, QS, SEQ, SVCS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local svc_prefix, service, holder = ARGV[1], ARGV[2], ARGV[3]
local limit_g, limit_s = tonumber(ARGV[4]), tonumber(ARGV[5])
local lease, waiter_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])

-- Expired leases belong to holders that died or hung: reclaim them.
redis.call('ZREMRANGEBYSCORE', G, '-inf', now)
redis.call('ZREMRANGEBYSCORE', S, '-inf', now)

-- A retry of an acquire that was granted but whose reply was lost.
if redis.call('ZSCORE', G, holder) then
  redis.call('ZADD', G, now + lease, holder)
  redis.call('ZADD', S, now + lease, holder)
  return {1, redis.call('ZCARD', G), redis.call('ZCARD', S), 0, redis.call('ZCARD', Q)}
end

-- Waiters that stopped polling (killed, hung) lose their place.
local dead = redis.call('ZRANGEBYSCORE', QD, '-inf', now)
for _, d in ipairs(dead) do
  redis.call('ZREM', Q, d)
  redis.call('ZREM', QD, d)
  redis.call('HDEL', QS, d)
end
if not redis.call('ZSCORE', Q, holder) then
  redis.call('ZADD', Q, redis.call('INCR', SEQ), holder)
  redis.call('HSET', QS, holder, service)
end
redis.call('ZADD', QD, now + waiter_ttl, holder)

local g = redis.call('ZCARD', G)
local s = redis.call('ZCARD', S)

-- Serve the queue first come, first served: simulate granting every earlier
-- waiter in order. An earlier waiter that could run takes its slots; one that
-- is held back only by the global limit holds back everyone behind it; one
-- held back by its own service's limit holds back only that service.
local running = {}
running[service] = s
local g_sim = g
local global_blocked = false
local ahead = 0
local queue = redis.call('ZRANGE', Q, 0, -1)
for _, w in ipairs(queue) do
  if w == holder then break end
  local ws = redis.call('HGET', QS, w)
  if ws then
    local rs = running[ws]
    if rs == nil then
      local k = svc_prefix .. ws
      redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
      rs = redis.call('ZCARD', k)
      running[ws] = rs
    end
    if rs < limit_s then
      ahead = ahead + 1
      if global_blocked or g_sim >= limit_g then
        global_blocked = true
      else
        g_sim = g_sim + 1
        running[ws] = rs + 1
      end
    elseif ws == service then
      ahead = ahead + 1
    end
  end
end

if (not global_blocked) and g_sim < limit_g and running[service] < limit_s then
  redis.call('ZADD', G, now + lease, holder)
  redis.call('ZADD', S, now + lease, holder)
  redis.call('ZREM', Q, holder)
  redis.call('ZREM', QD, holder)
  redis.call('HDEL', QS, holder)
  redis.call('SADD', SVCS, service)
  -- Everyone queued behind moved up one place.
  if #queue > 1 then
    redis.call('PUBLISH', ARGV[8], '1')
  end
  return {1, g + 1, s + 1, 0, #queue - 1}
end
return {0, g, s, ahead + 1, #queue}
