-- Add one batch of metric deltas, exactly once.
-- KEYS[1] metrics HASH (field -> total), KEYS[2] gauges HASH,
-- KEYS[3] this process's last applied batch number.
-- ARGV[1] batch number, ARGV[2] number of delta pairs, then delta
-- field/value pairs, then gauge field/value pairs.
-- A batch is retried with the same number until acknowledged, so a reply
-- lost after the batch was applied does not count it twice.
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
local batch = tonumber(ARGV[1])
if batch <= last then return 0 end
local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('SET', KEYS[3], ARGV[1], 'EX', 86400)
return 1
