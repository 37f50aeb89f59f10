-- One shard of the priority lane, swept by every process every second or so: the lane's depth
-- and oldest entry, and the entries whose process has neither finished nor renewed them for the
-- visibility timeout, now claimed by the caller (lane_resume then settles each of them).
-- KEYS[1] the shard's lane stream
-- ARGV[1] consumer name   ARGV[2] visibility ms   ARGV[3] most entries to claim
-- ARGV[4] forget consumers idle this long with nothing pending (ms; '0' = not now)
-- Returns SweepReply {depth, oldest entry id or '', now_ms, {{entry id, ref, send, expires ms,
--   sealed code}, ...}}
local lane = KEYS[1]
local consumer, visibility_ms, batch, forget_idle_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local now = now_ms()
if redis.call('EXISTS', lane) == 0 then return {0, '', fmt(now), {}} end
local claimed = redis.call('XAUTOCLAIM', lane, LANE_GROUP, consumer, visibility_ms, '0-0',
  'COUNT', batch)
local out = {}
for _, e in ipairs(claimed[2]) do
  -- Redis 6.2 lists an entry deleted meanwhile as nil: nothing to do for it.
  if type(e) == 'table' and type(e[2]) == 'table' then
    local m = {}
    for i = 1, #e[2], 2 do m[e[2][i]] = e[2][i + 1] end
    out[#out + 1] = {e[1], m[L.ref], m[L.send], m[L.expires_ms], m[L.sealed]}
  end
end
if forget_idle_ms ~= '0' then
  -- Consumers of processes long gone: forget them once nothing is pending on them.
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', lane, LANE_GROUP)) do
    local info = {}
    for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
    if info.name ~= consumer and tonumber(info.pending) == 0 and
        tonumber(info.idle) > tonumber(forget_idle_ms) then
      redis.call('XGROUP', 'DELCONSUMER', lane, LANE_GROUP, info.name)
    end
  end
end
local first = redis.call('XRANGE', lane, '-', '+', 'COUNT', 1)
local oldest = ''
if first[1] then oldest = first[1][1] end
return {redis.call('XLEN', lane), oldest, fmt(now), out}
