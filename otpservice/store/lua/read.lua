-- Read a verification and its delivery events in one round trip.
-- KEYS[1] record key   KEYS[2] events key   ARGV[1] tenant
-- Returns {} when missing or another tenant's, else {now_ms, {field, value, ...}, {event, ...}}
local tenant = redis.call('HGET', KEYS[1], 'tn')
if not tenant or tenant ~= ARGV[1] then return {} end
return {fmt(now_ms()), redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
