-- The room's media node: the pinned one while its heartbeat is recent,
-- else the candidate, pinned from now on.
-- KEYS: room's node key, nodes zset
-- ARGV: candidate node, alive after ms
local current = redis.call('GET', KEYS[1])
if current then
  local beat = redis.call('ZSCORE', KEYS[2], current)
  if beat and tonumber(beat) >= tonumber(ARGV[2]) then return current end
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
