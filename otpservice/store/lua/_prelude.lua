-- Shared helpers, prepended to every script by store/scripts.py (Lua scripts cannot import).
-- Time comes from the server (TIME) so every replica of the service agrees on it.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n)
  return string.format('%.0f', n)
end

-- GCRA: `limit` events per `period_ms`, with a burst of `limit`. Returns the milliseconds to wait
-- (0 when allowed) and the new theoretical arrival time to store when the caller commits.
local function gcra(key, limit, period_ms, now)
  local interval = period_ms / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local wait = new_tat - period_ms - now
  if wait > 0 then return math.ceil(wait), new_tat end
  return 0, new_tat
end

local function gcra_commit(key, new_tat, now)
  redis.call('SET', key, fmt(math.ceil(new_tat)), 'PX', fmt(math.max(1, math.ceil(new_tat - now))))
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

local function push_event(ekey, fragment, now, expire_at)
  redis.call('RPUSH', ekey, '{"at":' .. fmt(now) .. ',' .. fragment)
  redis.call('LTRIM', ekey, -50, -1)
  redis.call('PEXPIREAT', ekey, fmt(expire_at))
end
