-- Second half of a code check, after argon2: approve at most once, or count the failure.
-- Checks run concurrently: each took an attempt in check_begin, so attempts_left may be 0 while
-- a right code is still being hashed. Only wrong codes end a verification: it fails when every
-- attempt was used by a wrong code, and that `failed` goes to the check that made it so.
-- An approval or a failure is queued as the tenant's event in the same step.
-- KEYS[1] the number's current verification   KEYS[2] the number's failed-check counter
-- KEYS[3..5] the shard's outbox (due, created, payloads)   KEYS[6] the shard's expiry schedule
-- KEYS[7], KEYS[8] the shard's statistics hashes of now (keys.stats_keys): approvals
-- ARGV[1] the verification's rand   ARGV[2] the send whose code matched (0 = none)
-- ARGV[3] the verification's reference   ARGV[4] the tenants with event webhooks (' a b ')
-- Returns CheckFinishReply {verdict, attempts_left, created_ms, region, fraud prefix, fraud IP}:
--   verdict approved, pending, failed or not_found.
local current, failed_checks = KEYS[1], KEYS[2]
local due, created, payloads, schedule = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local stats_slot, stats_hour = KEYS[7], KEYS[8]
local rand, matched, ref, event_tenants = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]

local now = now_ms()
local f = redis.call('HMGET', current, F.rand, F.status, F.expires_ms, F.sends,
  F.accept_previous, F.attempts_left, F.created_ms, F.region, F.max_attempts, F.fraud_prefix,
  F.fraud_ip)
if f[1] ~= rand or f[2] ~= 'pending' or tonumber(f[3]) <= now then return {'not_found'} end
local sends = tonumber(f[4])
local left = tonumber(f[6])
local function close(status)
  redis.call('HSET', current, F.status, status, F.finished_ms, fmt(now))
  redis.call('ZREM', schedule, ref)
  queue_event(due, created, payloads, event_tenants, redis.call('HGET', current, F.tenant),
    'verification.' .. status, now, {ref = ref, r = record_snapshot(current)})
end
if matched > 0 and (matched == sends or (f[5] == '1' and matched == sends - 1)) then
  close('approved')
  -- The support console's statistics: approvals per country.
  local tenant = redis.call('HGET', current, F.tenant)
  count_stat(stats_slot, stats_hour, tenant .. '|approved|' .. f[8])
  -- A right code is not a failed check: give back what check_begin took.
  if tonumber(redis.call('GET', failed_checks) or '0') > 0 then
    redis.call('DECR', failed_checks)
  end
  return {'approved', left, f[7], f[8], f[10] or '', f[11] or ''}
end
local wrong = redis.call('HINCRBY', current, F.wrong_checks, 1)
if wrong >= tonumber(f[9]) then
  close('failed')
  return {'failed', 0}
end
return {'pending', left}
