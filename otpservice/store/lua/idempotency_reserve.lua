-- Reserve an Idempotency-Key, or tell what it already holds.
-- KEYS[1] idempotency key
-- ARGV[1] request fingerprint   ARGV[2] ttl ms
-- The value is '<state>|<fingerprint>|<response>' with state 'p' (in progress) or 'd' (done).
-- Returns {'reserved'} | {'conflict'} | {'in_progress'} | {'replay', response}
local key = KEYS[1]
local fingerprint, ttl_ms = ARGV[1], ARGV[2]

local v = redis.call('GET', key)
if not v then
  redis.call('SET', key, 'p|' .. fingerprint .. '|', 'PX', ttl_ms)
  return {'reserved'}
end
local state, seen, response = string.match(v, '^(%a)|([^|]*)|(.*)$')
if seen ~= fingerprint then return {'conflict'} end
if state == 'p' then return {'in_progress'} end
return {'replay', response}
