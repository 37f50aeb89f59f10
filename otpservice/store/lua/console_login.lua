-- The support console's sign-in limit (store/console.py): attempts per user name and per client
-- IP within a window that starts with the first one. An attempt whose password was right is
-- given back, so what counts is failures; concurrent attempts cannot slip past the limit, since
-- each is counted before its password is checked.
-- KEYS[1] the user name's counter   KEYS[2] the client IP's counter
-- ARGV[1] 'take' or 'succeeded'   ARGV[2] the user name's limit   ARGV[3] the IP's limit
-- ARGV[4] the window ms
-- Returns {wait_ms}: 0 when the attempt may go ahead, else the ms until the limit frees.
local user, ip = KEYS[1], KEYS[2]
local op = ARGV[1]

if op == 'succeeded' then
  redis.call('DEL', user)
  if tonumber(redis.call('GET', ip) or '0') > 0 then redis.call('DECR', ip) end
  return {0}
end
local user_limit, ip_limit, window = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local wait = 0
if tonumber(redis.call('GET', user) or '0') >= user_limit then
  wait = math.max(wait, redis.call('PTTL', user))
end
if tonumber(redis.call('GET', ip) or '0') >= ip_limit then
  wait = math.max(wait, redis.call('PTTL', ip))
end
if wait > 0 then return {wait} end
if redis.call('INCR', user) == 1 then redis.call('PEXPIRE', user, window) end
if redis.call('INCR', ip) == 1 then redis.call('PEXPIRE', ip, window) end
return {0}
