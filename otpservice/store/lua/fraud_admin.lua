-- The tenant's view of the fraud guard: its blocks in force, lifting one, its safe list.
-- KEYS[1] the tenant's blocks (hash)   KEYS[2] the tenant's safe list (set)
-- KEYS[3] today's counters   KEYS[4] this hour's counters
-- ARGV[1] action: blocks | lift | safe_list | safe_add | safe_remove   ARGV[2] now ms
-- ARGV[3] the block's key (lift) or the number/prefix (safe_add, safe_remove)
-- ARGV[4] how long the safe list is kept after its last change, ms
-- Returns blocks: {key, JSON, ...} of the blocks in force; lift: 1 | 0;
--   safe_list, safe_add, safe_remove: the safe list's members
local blocks, safe, today, this_hour = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local action, now, item, keep_ms = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]

if action == 'blocks' then
  local out = {}
  local all = redis.call('HGETALL', blocks)
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1])['until'] > now then
      out[#out + 1] = all[i]
      out[#out + 1] = all[i + 1]
    end
  end
  return out
elseif action == 'lift' then
  -- The block ends now (its level is kept: a new block within a day lasts twice as long), and
  -- the scope's unverified sends so far are forgiven, or the next send would block it again.
  local found = redis.call('HGET', blocks, item)
  if not found then return 0 end
  local b = cjson.decode(found)
  if b['until'] <= now then return 0 end
  b['until'] = now
  redis.call('HSET', blocks, item, cjson.encode(b))
  local d = redis.call('HMGET', today, 's:' .. item, 'a:' .. item, 'f:' .. item)
  local h = redis.call('HMGET', this_hour, 's:' .. item, 'a:' .. item, 'f:' .. item)
  local function unverified(c) return (tonumber(c[1]) or 0) - (tonumber(c[2]) or 0) - (tonumber(c[3]) or 0) end
  local u_day, u_hour = unverified(d), unverified(h)
  if u_day > 0 then redis.call('HINCRBY', today, 'f:' .. item, u_day) end
  if u_hour > 0 then redis.call('HINCRBY', this_hour, 'f:' .. item, u_hour) end
  return 1
end
if action == 'safe_add' then
  redis.call('SADD', safe, item)
  redis.call('PEXPIRE', safe, keep_ms)
elseif action == 'safe_remove' then
  redis.call('SREM', safe, item)
end
return redis.call('SMEMBERS', safe)
