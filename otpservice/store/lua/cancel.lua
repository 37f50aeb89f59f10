-- Cancel an open verification.
-- KEYS[1] record key   KEYS[2] number index   ARGV[1] tenant   ARGV[2] rand
-- Returns {'ok'} or {'not_found'}
local now = now_ms()
if not open_record(KEYS[1], ARGV[1], now) then return {'not_found'} end
redis.call('HSET', KEYS[1], 'st', 'canceled', 'fa', fmt(now))
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return {'ok'}
