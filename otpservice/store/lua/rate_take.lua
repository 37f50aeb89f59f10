-- Take one event from a GCRA bucket.
-- KEYS[1] bucket   ARGV[1] limit   ARGV[2] period ms
-- Returns wait ms: 0 when taken, else how long until one is free (nothing is taken then).
local now = now_ms()
local wait, tat = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
if wait > 0 then return wait end
gcra_commit(KEYS[1], tat, now)
return 0
