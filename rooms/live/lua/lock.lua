-- A moderator locks or unlocks an active or idle room (counted as an event).
-- KEYS: room hash
-- ARGV: '1' to lock, '0' to unlock
-- Returns the room's event count after, or -1 when there is no such room.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'finalizing' then return -1 end
redis.call('HSET', KEYS[1], 'locked', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'seq', 1)
