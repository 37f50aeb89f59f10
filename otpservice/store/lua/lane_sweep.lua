-- One shard of the priority lane, swept by every process every few tenths of a second: the
-- lane's depth and oldest entry, and the entries whose process has neither finished nor renewed
-- them for the visibility timeout, now claimed by the caller. Of those, an entry whose send is
-- no longer wanted (the verification is gone, finished or has a newer send) is dropped, an entry
-- whose code has expired is dropped and its delivery recorded `failed`; the rest are returned
-- for the caller to send.
-- KEYS[1] the shard's lane stream
-- ARGV[1] consumer name   ARGV[2] visibility ms   ARGV[3] most entries to claim
-- ARGV[4] event fragment of an expired send (JSON object minus '{')   ARGV[5] retention ms
-- ARGV[6] forget consumers idle this long with nothing pending (ms; '0' = not now)
-- Returns {depth, oldest entry id or '', now_ms, expired, stale, {entry, ...}} where each entry
-- is {entry id, verification id, send, expires ms, sealed code, to, region, locale, app hash,
--     tenant}
local now = now_ms()
local lane = KEYS[1]
if redis.call('EXISTS', lane) == 0 then return {0, '', fmt(now), 0, 0, {}} end
local base = string.sub(lane, 1, -6)
local claimed = redis.call('XAUTOCLAIM', lane, 'lane', ARGV[1], ARGV[2], '0-0', 'COUNT', ARGV[3])
local out = {}
local expired, stale = 0, 0
for _, e in ipairs(claimed[2]) do
  -- Redis 6.2 lists an entry deleted meanwhile as nil: nothing to do for it.
  if type(e) == 'table' and type(e[2]) == 'table' then
    local id = e[1]
    local m = {}
    for i = 1, #e[2], 2 do m[e[2][i]] = e[2][i + 1] end
    local vkey = base .. ':v:' .. m.v
    local f = redis.call('HMGET', vkey, 'st', 'sn', 'ex', 'to', 'cc', 'lc', 'ah', 'tn', 'ds')
    local send = tonumber(m.n)
    local drop = true
    if not f[1] or f[1] ~= 'pending' or tonumber(f[2]) ~= send then
      stale = stale + 1
    elseif tonumber(m.x) <= now then
      expired = expired + 1
      local keep_until = tonumber(f[3]) + tonumber(ARGV[5])
      push_event(base .. ':e:' .. m.v, '"send":' .. m.n .. ',' .. ARGV[4], now, keep_until)
      if delivery_rank(f[9]) < 2 then
        redis.call('HSET', vkey, 'ds', 'failed', 'du', fmt(now), 'nr', fmt(now))
      end
    else
      drop = false
      out[#out + 1] = {id, m.v, m.n, m.x, m.c, f[4], f[5], f[6] or '', f[7] or '', f[8]}
    end
    if drop then
      redis.call('XACK', lane, 'lane', id)
      redis.call('XDEL', lane, id)
    end
  end
end
if ARGV[6] ~= '0' then
  -- Consumers of processes long gone: forget them once nothing is pending on them.
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', lane, 'lane')) do
    local info = {}
    for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
    if info.name ~= ARGV[1] and tonumber(info.pending) == 0 and
        tonumber(info.idle) > tonumber(ARGV[6]) then
      redis.call('XGROUP', 'DELCONSUMER', lane, 'lane', info.name)
    end
  end
end
local first = redis.call('XRANGE', lane, '-', '+', 'COUNT', 1)
local oldest = ''
if first[1] then oldest = first[1][1] end
return {redis.call('XLEN', lane), oldest, fmt(now), expired, stale, out}
