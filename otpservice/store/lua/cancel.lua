-- Cancel an open verification.
-- KEYS[1] record key   KEYS[2] the number's key   ARGV[1] tenant   ARGV[2] rand
-- Returns {'ok'} or {'not_found'}
local now = now_ms()
if not open_record(KEYS[1], ARGV[1], now) then return {'not_found'} end
redis.call('HSET', KEYS[1], 'st', 'canceled', 'fa', fmt(now))
if redis.call('HGET', KEYS[2], 'r') == ARGV[2] then redis.call('HDEL', KEYS[2], 'r') end
return {'ok'}
