-- Generic cell rate algorithm: one key per user holding the theoretical
-- arrival time (ms, Redis clock).
-- KEYS[1] user key; ARGV[1] emission interval ms, ARGV[2] burst tolerance ms.
-- Returns {1, "0"} when allowed, {0, retry_after_ms} when not.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tostring(tat - now - tolerance)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, '0'}
