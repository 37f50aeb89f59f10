-- Cancel an open verification (and queue the tenant's event in the same step).
-- KEYS[1] the number's current verification
-- KEYS[2..4] the shard's outbox (due, created, payloads)   KEYS[5] the shard's expiry schedule
-- ARGV[1] tenant   ARGV[2] the verification's rand   ARGV[3] its reference
-- ARGV[4] the tenants with event webhooks (' a b ')
-- Returns {'ok'} or {'not_found'}
local current = KEYS[1]
local due, created, payloads, schedule = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local tenant, rand, ref, event_tenants = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local now = now_ms()
local f = redis.call('HMGET', current, F.rand, F.tenant, F.status, F.expires_ms)
if f[1] ~= rand or not is_open(f[2], f[3], f[4], tenant, now) then return {'not_found'} end
redis.call('HSET', current, F.status, 'canceled', F.finished_ms, fmt(now))
redis.call('ZREM', schedule, ref)
queue_event(due, created, payloads, event_tenants, tenant, 'verification.canceled', now,
  {ref = ref, r = record_snapshot(current)})
return {'ok'}
