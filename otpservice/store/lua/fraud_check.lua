-- The fraud guard's decision on one send, taken before any hashing (domain/fraud.py says the
-- rules): blocks in force, the country's hourly cap, then the unverified-send budgets of the
-- country, the number's prefix and the end user's IP, and the IP's countries of the day. A send
-- it lets through (or only flags) is counted at once; the caller releases it if the send does
-- not happen after all (fraud_release).
-- KEYS[1] the tenant's blocks (hash)   KEYS[2] the tenant's safe list (set)
-- KEYS[3..17] the tenant's day counters, today first, then the 14 days before
-- KEYS[18..41] its hour counters, this hour first, then the 23 hours before
-- KEYS[42..44] the tenant's outbox (due, created, payloads): `fraud.blocked` events
-- ARGV[1] the query: JSON of store/fraud.py FraudQuery
-- Returns FraudReply {verdict allow|refuse|flag, rule, figure, limit, window, until_ms, level}
local blocks, safe = KEYS[1], KEYS[2]
local due, created, payloads = KEYS[42], KEYS[43], KEYS[44]
local q = cjson.decode(ARGV[1])
local now = q.now_ms
local today, this_hour = KEYS[3], KEYS[18]

local function num(v) return tonumber(v) or 0 end

local function count_send(delta)
  local fields = {'s:c:' .. q.country, 's:p:' .. q.prefix}
  if q.ip ~= '' then fields[#fields + 1] = 's:i:' .. q.ip end
  for _, f in ipairs(fields) do
    redis.call('HINCRBY', today, f, delta)
    redis.call('HINCRBY', this_hour, f, delta)
  end
  if q.ip ~= '' and redis.call('HSETNX', today, 'ic:' .. q.ip .. ':' .. q.country, 1) == 1 then
    redis.call('HINCRBY', today, 'n:i:' .. q.ip, 1)
  end
  expire_no_sooner(today, q.day_end_ms + 14 * 86400000, now)
  expire_no_sooner(this_hour, q.hour_end_ms + 24 * 3600000, now)
end

-- A scope's verified history: its best verified day of the last 15 (today included) and its
-- verified sends of the last 24 hours. 38 reads, so kept for a minute in the hour's hash.
local function history(scope, a_today)
  local field = 'H:' .. scope
  local cached = redis.call('HGET', this_hour, field)
  if cached then
    local best, last24, at = string.match(cached, '^(%d+):(%d+):(%d+)$')
    if tonumber(at) > now - 60000 then return math.max(tonumber(best), a_today), tonumber(last24) end
  end
  local best = a_today
  for i = 4, 17 do
    local a = num(redis.call('HGET', KEYS[i], 'a:' .. scope))
    if a > best then best = a end
  end
  local last24 = 0
  for i = 18, 41 do last24 = last24 + num(redis.call('HGET', KEYS[i], 'a:' .. scope)) end
  redis.call('HSET', this_hour, field, best .. ':' .. last24 .. ':' .. now)
  return best, last24
end

-- Over budget with this send: the window it is over in, its figure and its limit; then whether
-- the scope has verified sends in its history (the last 14 days, today, the last 24 hours),
-- and the day's figure and budget (whichever window is over).
local function over(scope, b)
  -- s: sends, a: approved sends, f: unverified sends forgiven when the tenant lifted a block.
  local d = redis.call('HMGET', today, 's:' .. scope, 'a:' .. scope, 'f:' .. scope)
  local h = redis.call('HMGET', this_hour, 's:' .. scope, 'a:' .. scope, 'f:' .. scope)
  local u_day = math.max(0, num(d[1]) - num(d[2]) - num(d[3]))
  local u_hour = math.max(0, num(h[1]) - num(h[2]) - num(h[3]))
  -- Within the floors, within the budgets (they are never below them): no history to read.
  if u_hour + 1 <= b.floor_hour and u_day + 1 <= b.floor_day then return nil end
  local best, last24 = history(scope, num(d[2]))
  local day_budget = math.max(b.floor_day, math.floor(b.ratio * best), math.floor(b.ratio * last24))
  -- The verified sends of this hour or the last, whichever is more, also lift the hour's
  -- budget: a scope whose traffic grows within a day (a new tenant's first hours, a
  -- campaign) is not throttled by its own users before its day's figures catch up.
  local recent = math.max(num(h[2]), num(redis.call('HGET', KEYS[19], 'a:' .. scope)))
  local hour_budget = math.max(b.floor_hour, math.floor(day_budget / 6),
    math.floor(b.ratio * recent))
  local verified = best + last24 > 0
  if u_hour + 1 > hour_budget then
    return 'hour', u_hour + 1, hour_budget, verified, u_day + 1, day_budget
  end
  if u_day + 1 > day_budget then
    return 'day', u_day + 1, day_budget, verified, u_day + 1, day_budget
  end
  return nil
end

-- A prefix that converts less than half of today's codes: two unverified sends or more today,
-- and more of them than verified ones (an attacked range has many, none verified; one user
-- waiting for a code, or asking for it again, is not enough).
local function prefix_unconverted()
  local scope = 'p:' .. q.prefix
  local d = redis.call('HMGET', today, 's:' .. scope, 'a:' .. scope, 'f:' .. scope)
  local unverified = num(d[1]) - num(d[2]) - num(d[3])
  return unverified >= 2 and unverified > num(d[2])
end

-- Blocks that ended over a day ago are forgotten a few at a time (HRANDFIELD, no scan): the
-- blocks hash holds about the blocks of the last day, whatever an attack's number of IPs.
local function forget_old_blocks()
  local sample = redis.call('HRANDFIELD', blocks, 4, 'WITHVALUES')
  for i = 1, #sample, 2 do
    if cjson.decode(sample[i + 1])['until'] < now - 86400000 then redis.call('HDEL', blocks, sample[i]) end
  end
end

local function block(key, rule, figure, limit, window)
  forget_old_blocks()
  local level = 0
  local found = redis.call('HGET', blocks, key)
  if found then
    local previous = cjson.decode(found)
    -- Blocked again within a day of the last block: twice the cool-off.
    if previous.at > now - 86400000 then level = previous.level + 1 end
  end
  local cooloff = math.min(q.cooloff_max_ms, q.cooloff_ms * 2 ^ math.min(level, 20))
  local until_ms = now + cooloff
  local stored = {['until'] = until_ms, level = level, rule = rule, figure = figure,
    limit = limit, window = window, at = now, country = q.country}
  redis.call('HSET', blocks, key, cjson.encode(stored))
  stored.key = key
  queue_event(due, created, payloads, q.event_tenants, q.tenant, 'fraud.blocked', now,
    {b = stored})
  expire_no_sooner(blocks, until_ms + 86400000, now)
  return until_ms, level
end

local function decide(rule, figure, limit, window, until_ms, level)
  if q.mode == 'monitor' then
    count_send(1)
    return {'flag', rule, figure, limit, window, until_ms, level}
  end
  return {'refuse', rule, figure, limit, window, until_ms, level}
end

-- A scope over its budget: blocked (in enforce mode), then decided.
local function block_and_decide(key, rule, figure, limit, window)
  local until_ms, level = now, 0
  if q.mode ~= 'monitor' then until_ms, level = block(key, rule, figure, limit, window) end
  return decide(rule, figure, limit, window, until_ms, level)
end

-- The safe list: the number or one of its prefixes (most tenants have none: one EXISTS).
local safe_listed = q.safe
if not safe_listed and redis.call('EXISTS', safe) == 1 then
  for i = 2, #q.e164 do
    if redis.call('SISMEMBER', safe, string.sub(q.e164, 1, i)) == 1 then safe_listed = true end
  end
end
if safe_listed then
  count_send(1)
  return {'allow', '', 0, 0, '', 0, 0}
end

-- Blocks in force.
for _, key in ipairs({'p:' .. q.prefix, q.ip ~= '' and ('i:' .. q.ip) or nil}) do
  local found = redis.call('HGET', blocks, key)
  if found then
    local b = cjson.decode(found)
    if b['until'] > now then
      return decide(b.rule, b.figure, b.limit, b.window, b['until'], b.level)
    end
  end
end

-- The country's hourly cap, whatever its history.
if q.country_cap > 0 then
  local sent = num(redis.call('HGET', this_hour, 's:c:' .. q.country))
  if sent + 1 > q.country_cap then
    if q.cap_action == 'alert' then
      count_send(1)
      return {'flag', 'country_cap', sent + 1, q.country_cap, 'hour', q.hour_end_ms, 0}
    end
    return decide('country_cap', sent + 1, q.country_cap, 'hour', q.hour_end_ms, 0)
  end
end

-- The country's budget: refused until its window frees (no block: a country is not blocked).
-- A country with verified traffic is refused as a whole only past twice its day budget; past
-- a budget, only sends to prefixes that do not convert today are: an attack on a few ranges
-- of a country the tenant serves does not lock that country's real users out.
local window, figure, limit, verified, day_figure, day_budget =
  over('c:' .. q.country, q.country_budget)
if window then
  local whole = not verified or day_figure > 2 * day_budget
  if verified and whole then window, figure, limit = 'day', day_figure, day_budget end
  local until_ms = window == 'hour' and q.hour_end_ms or q.day_end_ms
  if whole then
    return decide('country_budget', figure, limit, window, until_ms, 0)
  end
  if prefix_unconverted() then
    return decide('country_prefix', figure, limit, window, until_ms, 0)
  end
end

-- The prefix's budget: past it, the prefix is blocked.
window, figure, limit = over('p:' .. q.prefix, q.prefix_budget)
if window then return block_and_decide('p:' .. q.prefix, 'prefix_budget', figure, limit, window) end

if q.ip ~= '' then
  -- An IP asking for codes to many countries in a day.
  local known = redis.call('HEXISTS', today, 'ic:' .. q.ip .. ':' .. q.country) == 1
  local countries = num(redis.call('HGET', today, 'n:i:' .. q.ip)) + (known and 0 or 1)
  if countries > q.ip_countries then
    return block_and_decide('i:' .. q.ip, 'ip_countries', countries, q.ip_countries, 'day')
  end
  window, figure, limit = over('i:' .. q.ip, q.ip_budget)
  if window then return block_and_decide('i:' .. q.ip, 'ip_budget', figure, limit, window) end
end

count_send(1)
return {'allow', '', 0, 0, '', 0, 0}
