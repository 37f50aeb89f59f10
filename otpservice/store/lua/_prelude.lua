-- Helpers shared by every script; store/scripts.py prepends them (Lua scripts cannot import),
-- after the names and rules of store/schema.py (F: record fields, L: lane entry fields, RANK).
-- Time comes from the server (TIME) so every replica of the service agrees on it.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n)
  return string.format('%.0f', n)
end

-- GCRA: `limit` events per `period_ms`, with a burst of `limit`. Given the stored theoretical
-- arrival time (nil: none), returns the milliseconds to wait (0 when allowed) and the new one to
-- store when the caller commits.
local function gcra_at(tat, limit, period_ms, now)
  local interval = period_ms / limit
  tat = tat or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local wait = new_tat - period_ms - now
  if wait > 0 then return math.ceil(wait), new_tat end
  return 0, new_tat
end

local function gcra(key, limit, period_ms, now)
  return gcra_at(tonumber(redis.call('GET', key)), limit, period_ms, now)
end

local function gcra_commit(key, new_tat, now)
  redis.call('SET', key, fmt(math.ceil(new_tat)), 'PX', fmt(math.max(1, math.ceil(new_tat - now))))
end

-- A number's send buckets are one string "<hour tat>:<day tat>". Returns the wait (0 when
-- allowed), which limit ('hour' or 'day') made it, and the pair to store on commit.
local function send_buckets(key, per_hour, per_day, now)
  local raw = redis.call('GET', key)
  local h, d
  if raw then
    local colon = string.find(raw, ':', 1, true)
    h = tonumber(string.sub(raw, 1, colon - 1))
    d = tonumber(string.sub(raw, colon + 1))
  end
  local w1, tat1 = gcra_at(h, per_hour, 3600000, now)
  if w1 > 0 then return w1, 'hour' end
  local w2, tat2 = gcra_at(d, per_day, 86400000, now)
  if w2 > 0 then return w2, 'day' end
  return 0, '', {math.ceil(tat1), math.ceil(tat2)}
end

local function send_buckets_commit(key, tats, now)
  local ttl = math.max(1, math.max(tats[1], tats[2]) - now)
  redis.call('SET', key, fmt(tats[1]) .. ':' .. fmt(tats[2]), 'PX', fmt(ttl))
end

-- Make `key` live at least until `until_ms`.
local function expire_no_sooner(key, until_ms, now)
  if redis.call('PTTL', key) < until_ms - now then redis.call('PEXPIREAT', key, fmt(until_ms)) end
end

-- Of a verification's two possible homes (the number's current key, or its archived key once a
-- newer verification took that), the one holding `rand`.
local function home_of(current, archived, rand)
  if redis.call('HGET', current, F.rand) == rand then return current end
  return archived
end

-- A verification is open for checks and resends while pending, unexpired and of this tenant.
local function is_open(tenant_field, status, expires, tenant, now)
  return tenant_field == tenant and status == 'pending' and tonumber(expires) > now
end

-- Delivery status order (RANK, from domain/delivery.py): a status moves only to a higher rank,
-- so terminal statuses never move and `unknown` moves nothing.
local function rank(status)
  return RANK[status] or -1
end

-- A verification's delivery events: one string of JSON objects, one per line, the last
-- MAX_EVENTS kept. (A list costs three times the memory of a string for the one or two events
-- most have.)
local function push_event(events_key, fragment, now, expire_at)
  local line = '{"at":' .. fmt(now) .. ',' .. fragment
  local events = redis.call('GET', events_key)
  if events then
    events = events .. '\n' .. line
    local _, count = string.gsub(events, '\n', '')
    while count >= MAX_EVENTS do
      events = string.sub(events, string.find(events, '\n', 1, true) + 1)
      count = count - 1
    end
  else
    events = line
  end
  redis.call('SET', events_key, events, 'PXAT', fmt(expire_at))
end

local function ack(lane, entry)
  redis.call('XACK', lane, LANE_GROUP, entry)
  redis.call('XDEL', lane, entry)
end

-- A verification's public fields (EVENT_FIELDS: never its salt or digests), flat
-- {field, value, ...}: what an event says of it, as it was when the event happened.
local function record_snapshot(record)
  local values = redis.call('HMGET', record, unpack(EVENT_FIELDS))
  local flat = {}
  for i, field in ipairs(EVENT_FIELDS) do
    if values[i] then
      flat[#flat + 1] = field
      flat[#flat + 1] = values[i]
    end
  end
  return flat
end

-- Queue a tenant event in this slot's outbox (keys.OutboxKeys; events.py delivers it), in the
-- same atomic step as the change it reports, when the tenant has event webhooks: `tenants` is
-- the caller's list of them, ' a b '. `body` is a table; its id is the time and a sequence.
local function queue_event(due, created, payloads, tenants, tenant, kind, now, body)
  if tenants == nil or tenant == nil or not string.find(tenants, ' ' .. tenant .. ' ', 1, true) then
    return
  end
  local id = fmt(now) .. '-' .. redis.call('HINCRBY', payloads, '#seq', 1)
  body.t, body.tn, body.at = kind, tenant, now
  redis.call('HSET', payloads, id, cjson.encode(body))
  redis.call('ZADD', due, fmt(now), id)
  redis.call('ZADD', created, fmt(now), id)
  for _, key in ipairs({due, created, payloads}) do
    expire_no_sooner(key, now + EVENTS_KEPT_MS, now)
  end
end

-- The support console's statistics (store/stats.py reads them): counters in the shard's
-- ten-minute and hour hashes the caller named (keys.stats_keys), fields
-- `<tenant>|<counter>|<detail>`; each hash expires a while after its period (the figures of
-- keys.STATS_SLOT_TTL_MS and STATS_HOUR_TTL_MS, and of domain/stats.py DELIVERY_BOUNDS_MS:
-- tests/console checks that they agree).
local STATS_SLOT_TTL_MS, STATS_HOUR_TTL_MS = 4200000, 86400000
local DELIVERY_BOUNDS_MS = {1000, 2000, 3000, 5000, 10000, 20000, 30000, 60000, 120000, 300000}

local function count_stat(slot, hour, field)
  if redis.call('HINCRBY', slot, field, 1) == 1 then
    redis.call('PEXPIRE', slot, STATS_SLOT_TTL_MS)
  end
  if redis.call('HINCRBY', hour, field, 1) == 1 then
    redis.call('PEXPIRE', hour, STATS_HOUR_TTL_MS)
  end
end

-- A send's first terminal report in the statistics: its status per country, the provider's
-- status word and error code, and, when `elapsed_ms` (from the send's submission) is known,
-- the time to deliver in DELIVERY_BOUNDS_MS buckets.
local function count_delivery(slot, hour, tenant, region, status, event, elapsed_ms)
  local head = tenant .. '|'
  count_stat(slot, hour, head .. status .. '|' .. region)
  local reported = cjson.decode('{' .. event)
  if type(reported.provider_status) == 'string' then
    local word = reported.provider_status
    if type(reported.error_code) == 'string' then word = word .. ' ' .. reported.error_code end
    count_stat(slot, hour, head .. 'ps|' .. word)
  end
  if status == 'delivered' and elapsed_ms then
    local bucket = 'inf'
    for _, bound in ipairs(DELIVERY_BOUNDS_MS) do
      if elapsed_ms <= bound then
        bucket = tostring(bound)
        break
      end
    end
    count_stat(slot, hour, head .. 'tt|' .. bucket)
  end
end
