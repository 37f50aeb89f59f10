-- Store a new code atomically: create the verification or resend on the open one, take the
-- number's send buckets, set every TTL, record the `queued` delivery event, and queue the SMS
-- in the shard's lane stream, claimed at once by the calling process (which sends it and
-- acknowledges it; if that process dies, another one claims the entry after a while).
-- KEYS[1] the number's key (its open verification and its send buckets)
-- KEYS[2] the shard's lane stream
-- ARGV[1] mode 'number'|'id'   ARGV[2] tenant   ARGV[3] record key prefix
-- ARGV[4] rand the pre-check saw ('' = none)   ARGV[5] rand for a new verification
-- ARGV[6] salt (new verification)   ARGV[7] digest of the new code
-- ARGV[8] sends per hour   ARGV[9] sends per day   ARGV[10] code ttl ms   ARGV[11] max attempts
-- ARGV[12] max sends   ARGV[13] cooldown base ms   ARGV[14] cooldown cap ms
-- ARGV[15] retention ms after expiry   ARGV[16] E.164 number   ARGV[17] region
-- ARGV[18] client_ref   ARGV[19] accept previous code '1'|'0'   ARGV[20] provider
-- ARGV[21] events key prefix   ARGV[22] queued event fragment (JSON object minus '{')
-- ARGV[23] locale   ARGV[24] Android app hash ('' = none)   ARGV[25] number tag
-- ARGV[26] the code, sealed (sealing.py)   ARGV[27] consumer name of the calling process
-- Returns {'ok', rand, created '1'|'0', now_ms, {field, value, ...}, lane entry id} or
-- {verdict, wait_ms} as
-- send_check does, or {'conflict', 0}
-- when another request changed the verification since the pre-check (the caller starts over).
local now = now_ms()
local tenant = ARGV[2]
local rand = ARGV[4]
if ARGV[1] == 'number' then
  rand = redis.call('HGET', KEYS[1], 'r') or ''
  if rand ~= '' and not open_record(ARGV[3] .. rand, tenant, now) then rand = '' end
elseif not open_record(ARGV[3] .. rand, tenant, now) then
  return {'not_found', 0}
end
if rand ~= ARGV[4] then return {'conflict', 0} end

local ttl = tonumber(ARGV[10])
local expires = now + ttl
local keep_until = expires + tonumber(ARGV[15])
local vkey
local sends
if rand ~= '' then
  vkey = ARGV[3] .. rand
  local f = redis.call('HMGET', vkey, 'sn', 'ms', 'nr', 'ex')
  sends = tonumber(f[1])
  if sends >= tonumber(f[2]) then return {'max_sends', tonumber(f[4]) - now} end
  local wait = tonumber(f[3]) - now
  if wait > 0 then return {'too_soon', wait} end
end
local w, limit, tats = send_buckets(KEYS[1], tonumber(ARGV[8]), tonumber(ARGV[9]), now)
if w > 0 then return {limit, w} end
send_buckets_commit(KEYS[1], tats, now)

local created = '0'
if rand == '' then
  created = '1'
  rand = ARGV[5]
  vkey = ARGV[3] .. rand
  sends = 0
  redis.call('HSET', vkey,
    'tn', tenant, 'to', ARGV[16], 'cc', ARGV[17], 'st', 'pending', 'ca', fmt(now),
    'al', ARGV[11], 'ms', ARGV[12], 'sl', ARGV[6], 'ap', ARGV[19], 'cr', ARGV[18], 'pv', ARGV[20],
    'lc', ARGV[23], 'ah', ARGV[24])
else
  -- The previous code stays only as h0, for tenants that accept the last two codes.
  redis.call('HSET', vkey, 'h0', redis.call('HGET', vkey, 'h1'))
end
sends = sends + 1
local next_resend = now + cooldown_ms(sends, tonumber(ARGV[13]), tonumber(ARGV[14]))
redis.call('HSET', vkey, 'h1', ARGV[7], 'sn', sends, 'ex', fmt(expires), 'nr', fmt(next_resend),
  'ds', 'queued', 'du', fmt(now))
redis.call('HDEL', vkey, 'sa')
redis.call('PEXPIREAT', vkey, fmt(keep_until))
redis.call('HSET', KEYS[1], 'r', rand)
keep_at_least(KEYS[1], ttl)
push_event(ARGV[21] .. rand, '"send":' .. sends .. ',' .. ARGV[22], now, keep_until)

local lane = KEYS[2]
if redis.call('EXISTS', lane) == 0 then
  redis.call('XGROUP', 'CREATE', lane, 'lane', '0', 'MKSTREAM')
end
local entry = redis.call('XADD', lane, '*',
  'v', ARGV[25] .. rand, 'n', sends, 'x', fmt(expires), 'c', ARGV[26])
-- Every entry is claimed by the script that added it, so the next undelivered one is this one.
redis.call('XREADGROUP', 'GROUP', 'lane', ARGV[27], 'COUNT', '1', 'STREAMS', lane, '>')
-- The stream outlives its newest entry's code by a minute; an idle shard's stream goes away.
if redis.call('PTTL', lane) < expires - now + 60000 then
  redis.call('PEXPIREAT', lane, fmt(expires + 60000))
end
return {'ok', rand, created, fmt(now), redis.call('HGETALL', vkey), entry}
