-- The room ended: unpin it, and take it off its node's rooms.
-- KEYS: room's node key
-- ARGV: key prefix, room name
local node = redis.call('GET', KEYS[1])
if not node then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. ':node:' .. node .. ':rooms', ARGV[2])
return 1
