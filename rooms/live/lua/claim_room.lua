-- Take over a room whose deadline passed (idle timeout, or an expired
-- finalizer's lease): only one caller gets it, with a new lease.
-- KEYS: room hash, members hash, deadlines zset
-- ARGV: name, now ms, lease ms
-- Returns {room id, record, was idle} or false
local room, members, deadlines = KEYS[1], KEYS[2], KEYS[3]
local name, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local score = redis.call('ZSCORE', deadlines, name)
if not score or tonumber(score) > now then return false end
local status = redis.call('HGET', room, 'status')
if not status or status == 'active' then
  redis.call('ZREM', deadlines, name)
  return false
end
if redis.call('HLEN', members) > 0 then
  redis.call('HSET', room, 'status', 'active')
  redis.call('ZREM', deadlines, name)
  return false
end
redis.call('HSET', room, 'status', 'finalizing')
redis.call('ZADD', deadlines, now + lease, name)
local was_idle = 0
if status == 'idle' then was_idle = 1 end
return {redis.call('HGET', room, 'id'), redis.call('HGET', room, 'record'), was_idle}
