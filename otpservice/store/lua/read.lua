-- Read a verification and its delivery events in one round trip.
-- KEYS[1] record key   KEYS[2] events key   ARGV[1] tenant
-- Returns {} when missing or another tenant's, else {now_ms, {field, value, ...}, events} where
-- events is the events string (one JSON object per line) or ''.
local tenant = redis.call('HGET', KEYS[1], 'tn')
if not tenant or tenant ~= ARGV[1] then return {} end
return {fmt(now_ms()), redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]) or ''}
