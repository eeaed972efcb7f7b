-- Add one batch of metric deltas, exactly once, to the current epoch.
-- KEYS[1] metrics HASH (field -> total), KEYS[2] gauges HASH,
-- KEYS[3] HASH process -> last applied batch number, KEYS[4] epoch,
-- KEYS[5] ZSET process -> time of its last flush (ms, Redis clock),
-- KEYS[6] the prefix of the time buckets' hashes (coord::windows; same hash
-- tag, so the keys built from it stay in this slot).
-- ARGV[1] batch number, ARGV[2] the epoch the sender last flushed into
-- ("" = never flushed), ARGV[3] a fresh epoch id (used if none exists),
-- ARGV[4] number of delta pairs, ARGV[5] the sending process, then delta
-- field/value pairs, then gauge field/value pairs. A delta field
-- `w<TAB><suffix><TAB><expire-at><TAB><field>` goes to bucket hash
-- KEYS[6]..suffix (field <field>), which expires at <expire-at> (Unix s).
-- Returns {status, epoch}: 1 applied, 0 duplicate (already applied),
-- 2 epoch changed (Redis lost its data: the sender must resend its totals).
--
-- None of these keys but the buckets has a TTL: under memory pressure
-- `volatile-lru` evicts only keys with one, and an evicted batch number
-- would let a retried batch (reply lost) count twice. Processes silent for
-- a day are forgotten here. An evicted bucket only makes its windows low.
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[4], epoch)
end
if ARGV[2] ~= '' and ARGV[2] ~= epoch then
  return {2, epoch}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local process = ARGV[5]
local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - 86400000, 'LIMIT', 0, 100)
for _, p in ipairs(gone) do
  redis.call('HDEL', KEYS[3], p)
  redis.call('ZREM', KEYS[5], p)
end
redis.call('ZADD', KEYS[5], now, process)
-- A batch is retried with the same number until acknowledged, so a reply
-- lost after the batch was applied does not count it twice.
local last = tonumber(redis.call('HGET', KEYS[3], process) or '0')
local batch = tonumber(ARGV[1])
if batch <= last then return {0, epoch} end
local n = tonumber(ARGV[4])
local i = 6
for _ = 1, n do
  local suffix, at, field = string.match(ARGV[i], '^w\t([^\t]+)\t(%d+)\t(.*)$')
  if suffix then
    local key = KEYS[6] .. suffix
    redis.call('HINCRBYFLOAT', key, field, ARGV[i + 1])
    redis.call('EXPIREAT', key, at)
  else
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
while i < #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('HSET', KEYS[3], process, ARGV[1])
return {1, epoch}
