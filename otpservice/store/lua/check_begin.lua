-- First half of a code check, BEFORE argon2: enforce the number's failed-check cap and the
-- verification's attempt budget, and take one attempt from each (a right code gives the
-- number's back in check_finish). So no more argon2 runs than attempts, even when concurrent.
-- KEYS[1] the number's current verification   KEYS[2] the number's failed-check counter
-- ARGV[1] tenant   ARGV[2] the verification to check ('' = the number's open one)
-- ARGV[3] failed-check limit   ARGV[4] failed-check window ms
-- Returns CheckBeginReply {verdict, wait_ms, rand, salt, digest, previous digest or '', sends}:
--   verdict ok, not_found or rate_limited.
local current, failed_checks = KEYS[1], KEYS[2]
local tenant, wanted = ARGV[1], ARGV[2]
local failed_limit, window_ms = tonumber(ARGV[3]), ARGV[4]

local now = now_ms()
local failed = tonumber(redis.call('GET', failed_checks) or '0')
if failed >= failed_limit then
  local wait = redis.call('PTTL', failed_checks)
  if wait < 1 then wait = 1000 end
  return {'rate_limited', wait}
end
local f = redis.call('HMGET', current, F.rand, F.tenant, F.status, F.expires_ms,
  F.attempts_left, F.salt, F.digest, F.previous_digest, F.sends, F.accept_previous)
local rand = f[1] or ''
if rand == '' or (wanted ~= '' and rand ~= wanted) then return {'not_found'} end
if not is_open(f[2], f[3], f[4], tenant, now) then return {'not_found'} end
if tonumber(f[5]) <= 0 then return {'not_found'} end
redis.call('HINCRBY', current, F.attempts_left, -1)
if redis.call('INCR', failed_checks) == 1 or redis.call('PTTL', failed_checks) < 0 then
  redis.call('PEXPIRE', failed_checks, window_ms)
end
local previous = ''
if f[10] == '1' then previous = f[8] or '' end
return {'ok', 0, rand, f[6], f[7], previous, f[9]}
