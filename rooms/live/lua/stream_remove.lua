-- Remove a stream; only the caller that removes it gets its record back.
-- KEYS: room's stream slots hash, room's streams hash, stream key, node's streams set
-- ARGV: stream id, slot (participant NUL kind)
local raw = redis.call('GET', KEYS[3])
if not raw then return false end
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[1])
return raw
