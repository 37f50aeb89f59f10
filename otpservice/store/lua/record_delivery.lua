-- Record one delivery event of one send, idempotently; the first terminal status wins.
-- KEYS[1] the number's current verification   KEYS[2] the verification's archived key
-- KEYS[3] its delivery events   KEYS[4] the set of the reports already recorded
-- KEYS[5] (only when the lane records what the provider answered) the shard's lane stream
-- ARGV[1] the verification's rand   ARGV[2] send number   ARGV[3] normalised status
-- ARGV[4] event (JSON object minus '{')   ARGV[5] '1' when this status lifts the resend cooldown
-- ARGV[6] retention ms after expiry   ARGV[7] fingerprint of the report (duplicate detection)
-- ARGV[8] (with KEYS[5]) the send's lane entry, acknowledged and deleted in the same step
-- Returns DeliveryReply {verdict, previous status, current status, submitted_ms or '', region,
--   now_ms}: verdict unmatched, duplicate or recorded.
local current, archived, events, seen, lane = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local rand, send, status, event = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local lifts_cooldown, retention_ms, fingerprint, entry = ARGV[5] == '1', ARGV[6], ARGV[7], ARGV[8]

local now = now_ms()
if lane then ack(lane, entry) end
local home = home_of(current, archived, rand)
local f = redis.call('HMGET', home, F.rand, F.sends, F.delivery_status, F.submitted_ms,
  F.region, F.status, F.expires_ms)
if f[1] ~= rand or send < 1 or send > tonumber(f[2]) then return {'unmatched'} end
-- A provider retrying a whole batch repeats reports out of order: remember every one.
local keep_until = tonumber(f[7]) + tonumber(retention_ms)
if redis.call('SADD', seen, fingerprint) == 0 then return {'duplicate'} end
redis.call('PEXPIREAT', seen, fmt(keep_until))
push_event(events, '"send":' .. send .. ',' .. event, now, keep_until)
local previous = f[3]
local now_status = previous
-- Only the latest send drives the verification's delivery status; older sends keep their events.
if send == tonumber(f[2]) and rank(previous) < TERMINAL_RANK and rank(status) > rank(previous) then
  now_status = status
  redis.call('HSET', home, F.delivery_status, status, F.delivery_updated_ms, fmt(now))
  if status == 'submitted' then redis.call('HSET', home, F.submitted_ms, fmt(now)) end
  if lifts_cooldown and f[6] == 'pending' then
    redis.call('HSET', home, F.next_resend_ms, fmt(now))
  end
end
return {'recorded', previous, now_status, f[4] or '', f[5], fmt(now)}
