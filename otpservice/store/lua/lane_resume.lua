-- Settle one send the sweep claimed from another process: drop it when it is no longer wanted
-- (its verification is gone, finished or has a newer send), drop it and record its delivery
-- `failed` when its code has expired, else hand back what is needed to send it again.
-- KEYS[1] the number's current verification   KEYS[2] the verification's archived key
-- KEYS[3] its delivery events   KEYS[4] the shard's lane stream
-- KEYS[5..7] the shard's outbox (due, created, payloads): `delivery.updated` when it fails
-- ARGV[1] the verification's rand   ARGV[2] send number   ARGV[3] the code's expiry ms
-- ARGV[4] the lane entry   ARGV[5] event of an expired send (JSON object minus '{')
-- ARGV[6] retention ms after expiry   ARGV[7] the verification's reference
-- ARGV[8] the tenants with event webhooks (' a b ')
-- Returns ResumeReply {verdict stale|expired|send, to, region, locale, app hash, tenant}
local current, archived, events, lane = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local due, created, payloads = KEYS[5], KEYS[6], KEYS[7]
local rand, send, code_expires_ms, entry = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local expired_event, retention_ms, ref, event_tenants = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]

local now = now_ms()
local home = home_of(current, archived, rand)
local f = redis.call('HMGET', home, F.rand, F.status, F.sends, F.expires_ms, F.to, F.region,
  F.locale, F.app_hash, F.tenant, F.delivery_status)
if f[1] ~= rand or f[2] ~= 'pending' or tonumber(f[3]) ~= send then
  ack(lane, entry)
  return {'stale'}
end
if code_expires_ms <= now then
  push_event(events, '"send":' .. send .. ',' .. expired_event, now, tonumber(f[4]) + retention_ms)
  if rank(f[10]) < TERMINAL_RANK then
    redis.call('HSET', home, F.delivery_status, 'failed', F.delivery_updated_ms, fmt(now),
      F.next_resend_ms, fmt(now))
    local delivery = cjson.decode('{' .. expired_event)
    delivery.send, delivery.at = send, now
    queue_event(due, created, payloads, event_tenants, f[9], 'delivery.updated', now,
      {ref = ref, r = record_snapshot(home), d = delivery})
  end
  ack(lane, entry)
  return {'expired'}
end
return {'send', f[5], f[6], f[7] or '', f[8] or '', f[9]}
