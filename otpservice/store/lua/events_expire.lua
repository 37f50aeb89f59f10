-- A verification the expiry schedule says has expired: report it once as the tenant's
-- `verification.expired` event, unless it finished meanwhile (then only forget it) or a resend
-- moved its expiry (then reschedule it).
-- KEYS[1] the number's current verification   KEYS[2] the verification's archived key
-- KEYS[3] the shard's expiry schedule   KEYS[4..6] the shard's outbox (due, created, payloads)
-- ARGV[1] the verification's rand   ARGV[2] its reference
-- ARGV[3] the tenants with event webhooks (' a b ')
-- Returns 1 when the event was queued, else 0.
local current, archived, schedule = KEYS[1], KEYS[2], KEYS[3]
local due, created, payloads = KEYS[4], KEYS[5], KEYS[6]
local rand, ref, event_tenants = ARGV[1], ARGV[2], ARGV[3]

local now = now_ms()
local home = home_of(current, archived, rand)
local f = redis.call('HMGET', home, F.rand, F.status, F.expires_ms, F.tenant)
if f[1] == rand and f[2] == 'pending' and tonumber(f[3]) > now then
  redis.call('ZADD', schedule, f[3], ref)
  return 0
end
-- ZREM decides who reports it, when two processes polled the same expiry.
if redis.call('ZREM', schedule, ref) == 0 or f[1] ~= rand or f[2] ~= 'pending' then return 0 end
queue_event(due, created, payloads, event_tenants, f[4], 'verification.expired', now,
  {ref = ref, r = record_snapshot(home)})
return 1
