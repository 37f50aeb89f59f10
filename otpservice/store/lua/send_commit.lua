-- Store a new code atomically: on the number's open verification (a resend), or on a new one
-- (the number's latest verification, when there is one, moves to its archived key); take the
-- number's send buckets, set every TTL, record the `queued` event, and queue the SMS in the
-- shard's lane stream, claimed at once by the calling process (which sends it and acknowledges
-- it; if that process dies, another one claims the entry after a while).
-- KEYS[1] the number's current verification   KEYS[2] the number's send buckets
-- KEYS[3] the shard's lane stream   KEYS[4] the events of the verification this send is for
-- KEYS[5] the archived key of the number's latest verification as the pre-check saw it (used
--         only when that one is no longer open)
-- KEYS[6] the shard's expiry schedule (tenants with event webhooks: `verification.expired`)
-- KEYS[7], KEYS[8] the shard's statistics hashes of now (keys.stats_keys): the support
--         console's counts of verifications started and SMS sent
-- ARGV[1] the request: JSON of usecases/ports.py SendRequest
-- ARGV[2] salt (for a new verification)   ARGV[3] digest of the new code
-- ARGV[4] the code, sealed (sealing.py)   ARGV[5] the queued event (JSON object minus '{')
-- ARGV[6] this process' consumer name in the lane's group
-- ARGV[7] the tenants with event webhooks (' a b ')
-- Returns SendCommitReply {verdict, wait_ms, created 0|1, now_ms, {field, value, ...}, entry}:
--   verdict ok, a refusal as send_check gives it, or conflict when the number's latest
--   verification changed since the pre-check (the caller starts over).
local current, buckets, lane, events, archived = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local schedule = KEYS[6]
local stats_slot, stats_hour = KEYS[7], KEYS[8]
local req = cjson.decode(ARGV[1])
local salt, digest, sealed, queued_event, consumer = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local event_tenants = ARGV[7]

local now = now_ms()
local f = redis.call('HMGET', current, F.rand, F.tenant, F.status, F.expires_ms, F.sends,
  F.max_sends, F.next_resend_ms, F.digest)
local rand = f[1] or ''
local open = rand ~= '' and is_open(f[2], f[3], f[4], req.tenant, now)
if req.by_id then
  if rand ~= req.seen_rand or not open then return {'not_found', 0} end
elseif rand ~= req.seen_rand or open ~= req.seen_open then
  return {'conflict', 0}
end

local sends = 0
if open then
  sends = tonumber(f[5])
  if sends >= tonumber(f[6]) then return {'max_sends', tonumber(f[4]) - now} end
  local wait = tonumber(f[7]) - now
  if wait > 0 then return {'too_soon', wait} end
end
local w, limit, tats = send_buckets(buckets, req.limits.sends_per_hour, req.limits.sends_per_day, now)
if w > 0 then return {limit, w} end
send_buckets_commit(buckets, tats, now)

local expires = now + req.ttl_ms
local keep_until = expires + req.retention_ms
local created = 0
if open then
  -- The previous code stays only as the previous digest, for tenants that accept it.
  redis.call('HSET', current, F.previous_digest, f[8])
else
  -- RENAME keeps the earlier verification's TTL: it stays readable for its retention. The new
  -- one lists it (and those before it) so a lookup by number finds them without a scan.
  local earlier = ''
  if rand ~= '' then
    local before = redis.call('HGET', current, F.earlier) or ''
    earlier = rand
    local kept = 1
    for r in string.gmatch(before, '%S+') do
      if kept >= EARLIER_KEPT then break end
      earlier = earlier .. ' ' .. r
      kept = kept + 1
    end
    redis.call('RENAME', current, archived)
  end
  created = 1
  rand = req.new_rand
  redis.call('HSET', current, F.rand, rand, F.tenant, req.tenant, F.to, req.to,
    F.region, req.region, F.status, 'pending', F.created_ms, fmt(now),
    F.attempts_left, req.max_attempts, F.max_attempts, req.max_attempts,
    F.max_sends, req.max_sends, F.salt, salt,
    F.accept_previous, req.accept_previous and '1' or '0', F.provider, req.provider,
    F.locale, req.locale)
  if req.client_ref ~= '' then redis.call('HSET', current, F.client_ref, req.client_ref) end
  if req.fraud_prefix ~= '' then redis.call('HSET', current, F.fraud_prefix, req.fraud_prefix) end
  if req.fraud_ip ~= '' then redis.call('HSET', current, F.fraud_ip, req.fraud_ip) end
  if req.app_hash ~= '' then redis.call('HSET', current, F.app_hash, req.app_hash) end
  if earlier ~= '' then redis.call('HSET', current, F.earlier, earlier) end
end
sends = sends + 1
local cooldown = req.cooldowns_ms[math.min(sends, #req.cooldowns_ms)]
redis.call('HSET', current, F.digest, digest, F.sends, sends, F.expires_ms, fmt(expires),
  F.next_resend_ms, fmt(now + cooldown), F.delivery_status, 'queued',
  F.delivery_updated_ms, fmt(now))
redis.call('HDEL', current, F.submitted_ms)
redis.call('PEXPIREAT', current, fmt(keep_until))
push_event(events, '"send":' .. sends .. ',' .. queued_event, now, keep_until)
-- The fraud guard's flags in monitor mode (each a JSON object minus '{', made by the caller).
for _, flag in ipairs(req.flag_events) do
  push_event(events, '"send":' .. sends .. ',' .. flag, now, keep_until)
end

if string.find(event_tenants, ' ' .. req.tenant .. ' ', 1, true) then
  -- A resend moves the expiry: the schedule follows.
  redis.call('ZADD', schedule, fmt(expires), req.tag .. rand)
  expire_no_sooner(schedule, expires + EVENTS_KEPT_MS, now)
end

-- The support console's statistics: verifications started and SMS sent, per country (a resend
-- by id knows its country from the record).
local stats_region = req.region
if stats_region == '' then stats_region = redis.call('HGET', current, F.region) or '' end
if created == 1 then
  count_stat(stats_slot, stats_hour, req.tenant .. '|started|' .. stats_region)
end
count_stat(stats_slot, stats_hour, req.tenant .. '|sent|' .. stats_region)

if redis.call('EXISTS', lane) == 0 then
  redis.call('XGROUP', 'CREATE', lane, LANE_GROUP, '0', 'MKSTREAM')
end
local entry = redis.call('XADD', lane, '*', L.ref, req.tag .. rand, L.send, sends,
  L.expires_ms, fmt(expires), L.sealed, sealed)
-- Every entry is claimed by the script that added it, so the next undelivered one is this one.
redis.call('XREADGROUP', 'GROUP', LANE_GROUP, consumer, 'COUNT', '1', 'STREAMS', lane, '>')
-- The stream outlives its newest entry's code by a minute; an idle shard's stream goes away.
if redis.call('PTTL', lane) < expires - now + 60000 then
  redis.call('PEXPIREAT', lane, fmt(expires + 60000))
end
return {'ok', 0, created, fmt(now), redis.call('HGETALL', current), entry}
