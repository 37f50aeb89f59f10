-- First half of a code check, BEFORE argon2: enforce the number's failed-check cap and the
-- verification's attempt budget, and take one attempt from each (a right code gives the
-- number's back in check_finish). So no more argon2 runs than attempts, even when concurrent.
-- KEYS[1] the number's key (mode 'number') or record key (mode 'id')   KEYS[2] failed-checks counter
-- ARGV[1] mode   ARGV[2] tenant   ARGV[3] record key prefix   ARGV[4] rand (mode 'id')
-- ARGV[5] failed-check limit   ARGV[6] failed-check window ms
-- Returns {'rate_limited', wait_ms} | {'not_found'} |
--         {'ok', rand, salt, h1, h0 or '', sends, attempts_left}
local now = now_ms()
local failed = tonumber(redis.call('GET', KEYS[2]) or '0')
if failed >= tonumber(ARGV[5]) then
  local wait = redis.call('PTTL', KEYS[2])
  if wait < 1 then wait = 1000 end
  return {'rate_limited', wait}
end
local rand = ARGV[4]
if ARGV[1] == 'number' then rand = redis.call('HGET', KEYS[1], 'r') or '' end
if rand == '' then return {'not_found'} end
local vkey = ARGV[3] .. rand
if not open_record(vkey, ARGV[2], now) then return {'not_found'} end
local f = redis.call('HMGET', vkey, 'al', 'sl', 'h1', 'h0', 'sn')
local left = tonumber(f[1])
if left <= 0 then return {'not_found'} end
left = redis.call('HINCRBY', vkey, 'al', -1)
if redis.call('INCR', KEYS[2]) == 1 or redis.call('PTTL', KEYS[2]) < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return {'ok', rand, f[2], f[3], f[4] or '', f[5], left}
