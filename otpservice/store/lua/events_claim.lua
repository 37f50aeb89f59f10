-- One slot's outbox of tenant events, polled by every process: the events due now, each claimed
-- for a lease (moved that far ahead: if the process dies with it, another takes it when the
-- lease ends), the outbox's depth and its oldest event, and, for a shard, the verifications
-- whose expiry has come (events_expire then reports each of them once).
-- KEYS[1] due   KEYS[2] created   KEYS[3] payloads   KEYS[4] the shard's expiry schedule (none
--         for a tenant's fraud-guard outbox)
-- ARGV[1] lease ms   ARGV[2] most events   ARGV[3] most expiries
-- Returns EventsClaimReply {depth, oldest event's time ms or '', now_ms, {id, payload, ...},
--   {reference, ...}}
local due, created, payloads, schedule = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lease_ms, most, most_expiries = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local now = now_ms()
local claimed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', fmt(now), 'LIMIT', 0, most)) do
  local payload = redis.call('HGET', payloads, id)
  if payload then
    redis.call('ZADD', due, fmt(now + lease_ms), id)
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = payload
  else
    redis.call('ZREM', due, id)
    redis.call('ZREM', created, id)
  end
end
local expired = {}
if schedule then
  expired = redis.call('ZRANGEBYSCORE', schedule, '-inf', fmt(now), 'LIMIT', 0, most_expiries)
end
local oldest = redis.call('ZRANGE', created, 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', due), oldest[2] or '', fmt(now), claimed, expired}
