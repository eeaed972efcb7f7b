-- Permit gauges: running globally, queue length, running per service.
-- KEYS[1] global leases, KEYS[2] queue, KEYS[3] queue deadlines,
-- KEYS[4] queue services, KEYS[5] services set; ARGV[1] svc key prefix.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, d in ipairs(dead) do
  redis.call('ZREM', KEYS[2], d)
  redis.call('ZREM', KEYS[3], d)
  redis.call('HDEL', KEYS[4], d)
end
local out = {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
for _, svc in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local k = ARGV[1] .. svc
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  table.insert(out, svc)
  table.insert(out, redis.call('ZCARD', k))
end
return out
