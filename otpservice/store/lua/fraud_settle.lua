-- After a send the fraud guard counted: its code was approved (count the approval, lift the
-- blocks of its prefix and IP: real users convert there), or it was not sent after all
-- (take the send back).
-- KEYS[1] the tenant's blocks   KEYS[2] the day counters of the send   KEYS[3] its hour counters
-- ARGV[1] 'approved' or 'released'   ARGV[2] country   ARGV[3] prefix   ARGV[4] IP tag or ''
-- ARGV[5] now ms   ARGV[6] the sends approved (the verification's first send and its resends)
-- Returns the number of blocks lifted.
local blocks, day, hour = KEYS[1], KEYS[2], KEYS[3]
local outcome, country, prefix, ip, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local sends = tonumber(ARGV[6])

local scopes = {'c:' .. country, 'p:' .. prefix}
if ip ~= '' then scopes[#scopes + 1] = 'i:' .. ip end
local lifted = 0
if outcome == 'approved' then
  for _, scope in ipairs(scopes) do
    redis.call('HINCRBY', day, 'a:' .. scope, sends)
    redis.call('HINCRBY', hour, 'a:' .. scope, sends)
  end
  expire_no_sooner(day, now + 15 * 86400000, now)
  expire_no_sooner(hour, now + 25 * 3600000, now)
  for _, key in ipairs({'p:' .. prefix, ip ~= '' and ('i:' .. ip) or nil}) do
    local found = redis.call('HGET', blocks, key)
    if found then
      local b = cjson.decode(found)
      if b['until'] > now then
        b['until'] = now
        redis.call('HSET', blocks, key, cjson.encode(b))
        lifted = lifted + 1
      end
    end
  end
else
  for _, scope in ipairs(scopes) do
    if tonumber(redis.call('HGET', day, 's:' .. scope) or '0') > 0 then
      redis.call('HINCRBY', day, 's:' .. scope, -1)
    end
    if tonumber(redis.call('HGET', hour, 's:' .. scope) or '0') > 0 then
      redis.call('HINCRBY', hour, 's:' .. scope, -1)
    end
  end
end
return lifted
