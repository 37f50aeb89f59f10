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
