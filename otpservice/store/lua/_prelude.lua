-- Shared helpers, prepended to every script by store/scripts.py (Lua scripts cannot import).
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

-- A number's key (per tenant) is a hash: 'r' the rand of its open verification (checked against
-- the record, which may have ended since), 's' its hourly and daily send buckets as
-- "<hour tat>:<day tat>". One key, not three, for each pending verification's number.
local function keep_at_least(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, fmt(math.max(1, ms))) end
end

-- Returns the wait (0 when allowed), which limit ('hour' or 'day') made it, and the value to
-- store on commit.
local function send_buckets(key, per_hour, per_day, now)
  local raw = redis.call('HGET', key, 's')
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
  redis.call('HSET', key, 's', fmt(tats[1]) .. ':' .. fmt(tats[2]))
  keep_at_least(key, math.max(tats[1], tats[2]) - now)
end

-- A verification is open for checks and resends while pending, unexpired and of this tenant.
local function open_record(vkey, tenant, now)
  local f = redis.call('HMGET', vkey, 'tn', 'st', 'ex')
  if not f[1] or f[1] ~= tenant or f[2] ~= 'pending' or tonumber(f[3]) <= now then
    return false
  end
  return true
end

local function cooldown_ms(sends, base, cap)
  if sends < 1 then return 0 end
  local exp = sends - 1
  if exp > 30 then exp = 30 end
  local c = base * (2 ^ exp)
  if c > cap then c = cap end
  return c
end

-- Delivery status order, mirrored from domain/delivery.py: terminal statuses never move, a
-- terminal report wins over any intermediate one, `unknown` moves nothing.
local TERMINAL = {delivered = true, undelivered = true, expired = true, rejected = true, failed = true}
local function delivery_rank(s)
  if TERMINAL[s] then return 2 end
  if s == 'submitted' then return 1 end
  if s == 'queued' then return 0 end
  return -1
end

-- A verification's delivery events: one string of JSON objects, one per line, the last 50 kept.
-- (A list costs three times the memory of a string for the one or two events most have.)
local MAX_EVENTS = 50
local function push_event(ekey, fragment, now, expire_at)
  local line = '{"at":' .. fmt(now) .. ',' .. fragment
  local events = redis.call('GET', ekey)
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
  redis.call('SET', ekey, events, 'PXAT', fmt(expire_at))
end
