-- What became of events a process claimed: delivered (or given up: gone from the outbox), or
-- failed (due again at the given time).
-- KEYS[1] due   KEYS[2] created   KEYS[3] payloads
-- ARGV pairs: event id, then '0' (done) or the next attempt's time ms
-- Returns the number of events settled.
local due, created, payloads = KEYS[1], KEYS[2], KEYS[3]

local settled = 0
for i = 1, #ARGV, 2 do
  local id, next_ms = ARGV[i], ARGV[i + 1]
  if next_ms == '0' then
    redis.call('ZREM', due, id)
    redis.call('ZREM', created, id)
    redis.call('HDEL', payloads, id)
    settled = settled + 1
  elseif redis.call('HEXISTS', payloads, id) == 1 then
    redis.call('ZADD', due, next_ms, id)
    settled = settled + 1
  end
end
return settled
