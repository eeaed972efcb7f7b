-- Extend the leases of every permit this process holds.
-- KEYS[1] global leases; ARGV: svc key prefix, lease ms, then holder, service pairs.
-- A lease that is gone (Redis restarted empty, or the holder stalled past
-- its lease) is put back: the search is running, so it must be counted.
-- Returns the number of leases that had to be re-added.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, lease = ARGV[1], tonumber(ARGV[2])
local readded = 0
for i = 3, #ARGV, 2 do
  local h, svc = ARGV[i], ARGV[i + 1]
  readded = readded + redis.call('ZADD', KEYS[1], now + lease, h)
  redis.call('ZADD', prefix .. svc, now + lease, h)
end
return readded
