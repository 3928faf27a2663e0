-- One login joins a room: creates the room, or refuses (busy, login_taken,
-- full), or adds the member and counts the event, in one step.
-- KEYS: room hash, members hash, deadlines zset, session's rooms set, chat list, profiles hash, live rooms set
-- ARGV: name, login, sid, new room id, record ('1'/'0'), max participants, now ms, profile JSON,
--       max live rooms (0: no limit)
-- Returns {outcome, room id, record, created, reactivated, seq, members (flat), chat, profiles (flat), locked,
--          recorded by (the login whose join created the room with record; '' when it does not record)}
-- (login_taken: members holds only the holder; server_full: the room is not live and max live rooms are)
local room, members, deadlines, session_rooms, chat, profiles, live_rooms =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local name, login, sid, new_id, record, max, now, profile, max_rooms =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8], tonumber(ARGV[9])
local status = redis.call('HGET', room, 'status')
if status == 'finalizing' then return {'busy', '', '0', 0, 0, 0, {}, {}, {}, '0'} end
local created = 0
if not status then
  if max_rooms > 0 and redis.call('SCARD', live_rooms) >= max_rooms then
    return {'server_full', '', '0', 0, 0, 0, {}, {}, {}, '0'}
  end
  redis.call('SADD', live_rooms, name)
  redis.call('HSET', room, 'id', new_id, 'status', 'active', 'record', record, 'created_ms', now)
  if record == '1' then redis.call('HSET', room, 'recorded_by', login) end
  status = 'active'
  created = 1
end
local id = redis.call('HGET', room, 'id')
local rec = redis.call('HGET', room, 'record')
local holder = redis.call('HGET', members, login)
if holder then
  if holder == sid then
    local seq = tonumber(redis.call('HGET', room, 'seq') or '0')
    return {'already', id, rec, 0, 0, seq, redis.call('HGETALL', members), redis.call('LRANGE', chat, 0, -1),
            redis.call('HGETALL', profiles), redis.call('HGET', room, 'locked') or '0',
            redis.call('HGET', room, 'recorded_by') or ''}
  end
  return {'login_taken', id, rec, 0, 0, 0, {login, holder}, {}, {}, '0'}
end
if redis.call('HGET', room, 'locked') == '1' then return {'locked', id, rec, 0, 0, 0, {}, {}, {}, '1'} end
if redis.call('HLEN', members) >= max then return {'full', id, rec, 0, 0, 0, {}, {}, {}, '0'} end
redis.call('HSET', members, login, sid)
redis.call('HSET', profiles, login, profile)
redis.call('SADD', session_rooms, name)
local seq = redis.call('HINCRBY', room, 'seq', 1)
local reactivated = 0
if status == 'idle' then
  redis.call('HSET', room, 'status', 'active')
  redis.call('ZREM', deadlines, name)
  reactivated = 1
end
return {'joined', id, rec, created, reactivated, seq, redis.call('HGETALL', members), redis.call('LRANGE', chat, 0, -1),
        redis.call('HGETALL', profiles), redis.call('HGET', room, 'locked') or '0',
        redis.call('HGET', room, 'recorded_by') or ''}
