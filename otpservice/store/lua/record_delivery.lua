-- Record one delivery event of one send, idempotently; the first terminal status wins.
-- A change of the delivery status (of the latest send; any report of an earlier one) is queued
-- as the tenant's `delivery.updated` event in the same step.
-- KEYS[1] the number's current verification   KEYS[2] the verification's archived key
-- KEYS[3] its delivery events   KEYS[4] the set of the reports already recorded
-- KEYS[5..7] the shard's outbox (due, created, payloads)
-- KEYS[8] the shard's lane stream (acknowledged only when ARGV[10] names an entry)
-- KEYS[9], KEYS[10] the shard's statistics hashes of now (keys.stats_keys): each send's
--         first terminal report, counted once for the support console
-- ARGV[1] the verification's rand   ARGV[2] send number   ARGV[3] normalised status
-- ARGV[4] event (JSON object minus '{')   ARGV[5] '1' when this status lifts the resend cooldown
-- ARGV[6] retention ms after expiry   ARGV[7] fingerprint of the report (duplicate detection)
-- ARGV[8] the verification's reference   ARGV[9] the tenants with event webhooks (' a b ')
-- ARGV[10] (only when the lane records what the provider answered) the send's lane entry,
--         acknowledged and deleted in the same step
-- Returns DeliveryReply {verdict, previous status, current status, submitted_ms or '', region,
--   now_ms}: verdict unmatched, duplicate or recorded.
local current, archived, events, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local due, created, payloads, lane = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local rand, send, status, event = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local lifts_cooldown, retention_ms, fingerprint = ARGV[5] == '1', ARGV[6], ARGV[7]
local ref, event_tenants, entry = ARGV[8], ARGV[9], ARGV[10]
local stats_slot, stats_hour = KEYS[9], KEYS[10]

local now = now_ms()
if entry then ack(lane, entry) end
local home = home_of(current, archived, rand)
local f = redis.call('HMGET', home, F.rand, F.sends, F.delivery_status, F.submitted_ms,
  F.region, F.status, F.expires_ms, F.tenant)
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
if now_status ~= previous or send ~= tonumber(f[2]) then
  local delivery = cjson.decode('{' .. event)
  delivery.send, delivery.at = send, now
  queue_event(due, created, payloads, event_tenants, f[8], 'delivery.updated', now,
    {ref = ref, r = record_snapshot(home), d = delivery})
end
-- The support console's statistics: each send's first terminal report, once (a marker
-- beside the reports' fingerprints); the time to deliver only for the latest send, whose
-- submission time the record keeps.
if rank(status) >= TERMINAL_RANK and redis.call('SADD', seen, 'terminal:' .. send) == 1 then
  local submitted = send == tonumber(f[2]) and tonumber(f[4])
  count_delivery(stats_slot, stats_hour, f[8], f[5], status, event,
    submitted and (now - submitted) or nil)
end
return {'recorded', previous, now_status, f[4] or '', f[5], fmt(now)}
