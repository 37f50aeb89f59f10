-- Cancel an open verification.
-- KEYS[1] the number's current verification
-- ARGV[1] tenant   ARGV[2] the verification's rand
-- Returns {'ok'} or {'not_found'}
local current = KEYS[1]
local tenant, rand = ARGV[1], ARGV[2]

local now = now_ms()
local f = redis.call('HMGET', current, F.rand, F.tenant, F.status, F.expires_ms)
if f[1] ~= rand or not is_open(f[2], f[3], f[4], tenant, now) then return {'not_found'} end
redis.call('HSET', current, F.status, 'canceled', F.finished_ms, fmt(now))
return {'ok'}
