-- Register a stream unless its publisher already has one of that kind in
-- the room.
-- KEYS: room's stream slots hash, room's streams hash, stream key, node's streams set
-- ARGV: stream id, stream JSON, slot (participant NUL kind)
if redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
