-- A support console session (store/console.py): open one, or read one and push its idle expiry
-- back, never past its absolute end. Fields: u the user, p the fingerprint of the user's password
-- hash when the session began, c when it began, e when it must end.
-- KEYS[1] the session
-- ARGV[1] 'open' or 'touch'   ARGV[2] the idle timeout ms
-- ARGV[3] (open) the user   ARGV[4] (open) the password hash's fingerprint
-- ARGV[5] (open) the absolute lifetime ms
-- Returns (open) {now_ms}; (touch) {} when there is no such session (any more), else
--   {user, fingerprint, created_ms, now_ms}.
local session = KEYS[1]
local op, idle_ms = ARGV[1], tonumber(ARGV[2])

local now = now_ms()
if op == 'open' then
  redis.call('HSET', session, 'u', ARGV[3], 'p', ARGV[4], 'c', fmt(now),
    'e', fmt(now + tonumber(ARGV[5])))
  redis.call('PEXPIRE', session, fmt(idle_ms))
  return {fmt(now)}
end
local f = redis.call('HMGET', session, 'u', 'p', 'c', 'e')
if not f[1] then return {} end
local ends = tonumber(f[4])
if not ends or ends <= now then
  redis.call('DEL', session)
  return {}
end
redis.call('PEXPIRE', session, fmt(math.min(idle_ms, ends - now)))
return {f[1], f[2], f[3], fmt(now)}
