-- Read-only pre-check of a start or a resend, run BEFORE any argon2 work.
-- KEYS[1] the number's current verification   KEYS[2] the number's send buckets
-- ARGV[1] tenant   ARGV[2] the verification to resend ('' = a start for the number)
-- ARGV[3] sends per hour   ARGV[4] sends per day
-- Returns SendCheckReply {verdict, wait_ms, rand, open 0|1, salt}: verdict is one of
--   new | resend | not_found | max_sends | too_soon | hour | day; rand is the number's latest
--   verification ('' = none), open whether a send goes to it.
local current, buckets = KEYS[1], KEYS[2]
local tenant, wanted = ARGV[1], ARGV[2]
local per_hour, per_day = tonumber(ARGV[3]), tonumber(ARGV[4])

local now = now_ms()
local f = redis.call('HMGET', current, F.rand, F.tenant, F.status, F.expires_ms, F.sends,
  F.max_sends, F.next_resend_ms, F.salt)
local rand = f[1] or ''
local open = rand ~= '' and is_open(f[2], f[3], f[4], tenant, now)
if wanted ~= '' and (rand ~= wanted or not open) then return {'not_found', 0, '', 0, ''} end

if open then
  -- Out of sends: a new verification can start once this one expires.
  if tonumber(f[5]) >= tonumber(f[6]) then return {'max_sends', tonumber(f[4]) - now, rand, 1, ''} end
  local wait = tonumber(f[7]) - now
  if wait > 0 then return {'too_soon', wait, rand, 1, ''} end
end
local w, limit = send_buckets(buckets, per_hour, per_day, now)
if w > 0 then return {limit, w, rand, open and 1 or 0, ''} end
if open then return {'resend', 0, rand, 1, f[8]} end
return {'new', 0, rand, 0, ''}
