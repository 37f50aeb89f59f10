-- Second half of a code check, after argon2: approve at most once, or count the failure.
-- KEYS[1] record key   KEYS[2] failed-checks counter   KEYS[3] the number's key
-- ARGV[1] which code matched: the send number of the matching digest, or 0 for none
-- ARGV[2] rand
-- Returns {'approved', attempts_left, created_ms, region} | {'pending', attempts_left} |
--         {'failed', 0} | {'not_found'}
local now = now_ms()
local f = redis.call('HMGET', KEYS[1], 'st', 'ex', 'sn', 'ap', 'al', 'ca', 'cc')
if f[1] ~= 'pending' or tonumber(f[2]) <= now then return {'not_found'} end
local matched = tonumber(ARGV[1])
local sends = tonumber(f[3])
local left = tonumber(f[5])
local function close(status)
  redis.call('HSET', KEYS[1], 'st', status, 'fa', fmt(now))
  if redis.call('HGET', KEYS[3], 'r') == ARGV[2] then redis.call('HDEL', KEYS[3], 'r') end
end
if matched > 0 and (matched == sends or (f[4] == '1' and matched == sends - 1)) then
  close('approved')
  -- A right code is not a failed check: give back what check_begin took.
  if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
  return {'approved', left, f[6], f[7]}
end
if left <= 0 then
  close('failed')
  return {'failed', 0}
end
return {'pending', left}
