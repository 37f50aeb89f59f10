-- Read-only pre-check before a start or resend, run BEFORE any argon2 work.
-- KEYS[1] the number's key (its open verification and its send buckets)
-- ARGV[1] mode: 'number' (start) or 'id' (resend)   ARGV[2] tenant
-- ARGV[3] record key prefix   ARGV[4] rand of the verification (mode 'id')
-- ARGV[5] sends per hour   ARGV[6] sends per day   ARGV[7] max sends
-- ARGV[8] cooldown base ms   ARGV[9] cooldown cap ms
-- Returns {verdict, wait_ms, rand, salt}; verdict is one of
--   new | resend | not_found | max_sends | too_soon | hour | day
local now = now_ms()
local tenant = ARGV[2]
local rand = ARGV[4]
if ARGV[1] == 'number' then
  rand = redis.call('HGET', KEYS[1], 'r') or ''
end
local open = rand ~= '' and open_record(ARGV[3] .. rand, tenant, now)
if ARGV[1] == 'id' and not open then return {'not_found', 0, '', ''} end

if open then
  local vkey = ARGV[3] .. rand
  local f = redis.call('HMGET', vkey, 'sn', 'ms', 'nr', 'sl', 'ex')
  local sends = tonumber(f[1])
  -- Out of sends: a new verification can start once this one expires.
  if sends >= tonumber(f[2]) then return {'max_sends', tonumber(f[5]) - now, rand, ''} end
  local wait = tonumber(f[3]) - now
  if wait > 0 then return {'too_soon', wait, rand, ''} end
  local w, limit = send_buckets(KEYS[1], tonumber(ARGV[5]), tonumber(ARGV[6]), now)
  if w > 0 then return {limit, w, rand, ''} end
  return {'resend', 0, rand, f[4]}
end

local w, limit = send_buckets(KEYS[1], tonumber(ARGV[5]), tonumber(ARGV[6]), now)
if w > 0 then return {limit, w, '', ''} end
return {'new', 0, '', ''}
