-- Record one delivery event of one send, idempotently; the first terminal status wins.
-- KEYS[1] record key   KEYS[2] events key   KEYS[3] set of the reports already recorded
-- ARGV[1] send number   ARGV[2] normalised status   ARGV[3] event fragment (JSON object minus '{')
-- ARGV[4] '1' when this status lifts the resend cooldown   ARGV[5] retention ms after expiry
-- ARGV[6] fingerprint of the report (send, status, provider fields) for duplicate detection
-- KEYS[4], ARGV[7] (only when the lane records what the provider answered): the shard's lane
--   stream and the send's entry, acknowledged and deleted in the same step
-- Returns {'unmatched'} | {'duplicate'} |
--         {'recorded', previous_status, current_status, submitted_ms or '', region, provider, now_ms}
local now = now_ms()
if KEYS[4] then
  redis.call('XACK', KEYS[4], 'lane', ARGV[7])
  redis.call('XDEL', KEYS[4], ARGV[7])
end
local f = redis.call('HMGET', KEYS[1], 'sn', 'ds', 'sa', 'cc', 'pv', 'st', 'ex')
if not f[1] then return {'unmatched'} end
local send = tonumber(ARGV[1])
local status = ARGV[2]
if send < 1 or send > tonumber(f[1]) then return {'unmatched'} end
-- A provider retrying a whole batch repeats reports out of order: remember every one.
local keep_until = tonumber(f[7]) + tonumber(ARGV[5])
if redis.call('SADD', KEYS[3], ARGV[6]) == 0 then
  return {'duplicate'}
end
redis.call('PEXPIREAT', KEYS[3], fmt(keep_until))
push_event(KEYS[2], '"send":' .. ARGV[1] .. ',' .. ARGV[3], now, keep_until)
local previous = f[2]
local current = previous
-- Only the latest send drives the verification's delivery status; older sends keep their events.
if send == tonumber(f[1]) and delivery_rank(previous) < 2 and
    delivery_rank(status) > delivery_rank(previous) then
  current = status
  redis.call('HSET', KEYS[1], 'ds', status, 'du', fmt(now))
  if status == 'submitted' then redis.call('HSET', KEYS[1], 'sa', fmt(now)) end
  if ARGV[4] == '1' and f[6] == 'pending' then
    redis.call('HSET', KEYS[1], 'nr', fmt(now))
  end
end
return {'recorded', previous, current, f[3] or '', f[4], f[5], fmt(now)}
