-- Reserve an Idempotency-Key, or tell what it already holds.
-- KEYS[1] idempotency key   ARGV[1] request fingerprint   ARGV[2] ttl ms
-- The value is '<state>|<fingerprint>|<response>' with state 'p' (in progress) or 'd' (done).
-- Returns {'reserved'} | {'conflict'} | {'in_progress'} | {'replay', response}
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'p|' .. ARGV[1] .. '|', 'PX', ARGV[2])
  return {'reserved'}
end
local state, fp, response = string.match(v, '^(%a)|([^|]*)|(.*)$')
if fp ~= ARGV[1] then return {'conflict'} end
if state == 'p' then return {'in_progress'} end
return {'replay', response}
