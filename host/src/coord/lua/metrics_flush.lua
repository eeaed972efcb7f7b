-- Add one batch of metric deltas, exactly once, to the current epoch.
-- KEYS[1] metrics HASH (field -> total), KEYS[2] gauges HASH,
-- KEYS[3] this process's last applied batch number, KEYS[4] epoch.
-- ARGV[1] batch number, ARGV[2] the epoch the sender last flushed into
-- ("" = never flushed), ARGV[3] a fresh epoch id (used if none exists),
-- ARGV[4] number of delta pairs, then delta field/value pairs, then gauge
-- field/value pairs.
-- Returns {status, epoch}: 1 applied, 0 duplicate (already applied),
-- 2 epoch changed (Redis lost its data: the sender must resend its totals).
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[4], epoch)
end
if ARGV[2] ~= '' and ARGV[2] ~= epoch then
  return {2, epoch}
end
-- A batch is retried with the same number until acknowledged, so a reply
-- lost after the batch was applied does not count it twice.
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
local batch = tonumber(ARGV[1])
if batch <= last then return {0, epoch} end
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('SET', KEYS[3], ARGV[1], 'EX', 86400)
return {1, epoch}
