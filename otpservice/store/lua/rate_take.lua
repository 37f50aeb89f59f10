-- Take one event from a GCRA bucket.
-- KEYS[1] bucket
-- ARGV[1] limit   ARGV[2] period ms
-- Returns wait ms: 0 when taken, else how long until one is free (nothing is taken then).
local bucket = KEYS[1]
local limit, period_ms = tonumber(ARGV[1]), tonumber(ARGV[2])

local now = now_ms()
local wait, tat = gcra(bucket, limit, period_ms, now)
if wait > 0 then return wait end
gcra_commit(bucket, tat, now)
return 0
