-- A member leaves: the room goes on, or (emptied) waits for its finalizer
-- (explicit leave, with a lease) or for its idle deadline (a drop).
-- KEYS: room hash, members hash, deadlines zset, session's rooms set, profiles hash
-- ARGV: name, login, sid, now ms, lease ms, idle deadline ms ('' for an explicit leave)
-- Returns {outcome, room id, record, seq, the member's profile}
local room, members, deadlines, session_rooms = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, login, sid, now, lease, idle_deadline =
    ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if redis.call('HGET', members, login) ~= sid then return {'absent', '', '0', 0, ''} end
local profile = redis.call('HGET', KEYS[5], login) or ''
redis.call('HDEL', members, login)
redis.call('HDEL', KEYS[5], login)
redis.call('SREM', session_rooms, name)
local id = redis.call('HGET', room, 'id')
local rec = redis.call('HGET', room, 'record')
local seq = redis.call('HINCRBY', room, 'seq', 1)
if redis.call('HLEN', members) > 0 then return {'left', id, rec, seq, profile} end
if idle_deadline == '' then
  redis.call('HSET', room, 'status', 'finalizing')
  redis.call('ZADD', deadlines, now + lease, name)
  return {'finalize', id, rec, seq, profile}
end
redis.call('HSET', room, 'status', 'idle')
redis.call('ZADD', deadlines, tonumber(idle_deadline), name)
return {'idle', id, rec, seq, profile}
