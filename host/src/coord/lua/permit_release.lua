-- Release a permit and/or give up a place in the queue.
-- KEYS[1] global leases, KEYS[2] service leases, KEYS[3] queue,
-- KEYS[4] queue deadlines, KEYS[5] queue services; ARGV[1] holder,
-- ARGV[2] channel that wakes waiters (sessions subscribe to it).
-- Returns 1 when a lease was held.
local held = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local queued = redis.call('HDEL', KEYS[5], ARGV[1])
if held == 1 or queued == 1 then
  redis.call('PUBLISH', ARGV[2], '1')
end
return held
