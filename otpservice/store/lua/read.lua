-- Read a verification and its delivery events in one round trip.
-- KEYS[1] the number's current verification   KEYS[2] the verification's archived key
-- KEYS[3] its delivery events
-- ARGV[1] tenant   ARGV[2] the verification's rand
-- Returns {} when missing or another tenant's, else ReadReply {now_ms, {field, value, ...},
--   events}: events is the events string (one JSON object per line) or ''.
local current, archived, events = KEYS[1], KEYS[2], KEYS[3]
local tenant, rand = ARGV[1], ARGV[2]

local home = home_of(current, archived, rand)
local found = redis.call('HMGET', home, F.tenant, F.rand)
if found[1] ~= tenant or found[2] ~= rand then return {} end
return {fmt(now_ms()), redis.call('HGETALL', home), redis.call('GET', events) or ''}
