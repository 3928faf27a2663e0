-- The finalizer wrote the room's history: drop the room, if it is still the
-- same life of the room and still finalizing.
-- KEYS: room hash, members hash, deadlines zset, chat list, profiles hash, live rooms set
-- ARGV: name, room id
local room, members, deadlines = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', room, 'id') ~= ARGV[2] then return 0 end
if redis.call('HGET', room, 'status') ~= 'finalizing' then return 0 end
redis.call('DEL', room, members, KEYS[4], KEYS[5])
redis.call('ZREM', deadlines, ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
return 1
