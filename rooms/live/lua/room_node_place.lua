-- The room's media node: the pinned one while its heartbeat is recent
-- (draining or not: a room stays on its node until it ends); else the live,
-- non-draining node with the lowest placement score (ties: the lowest
-- name), pinned from now on and counted among that node's rooms at once.
-- The score is rooms.live.placement.placement_score: the heartbeat's score
-- plus, per pinned room the heartbeat did not count yet, the score per room
-- it served (at least NEW_ROOM_LEGS).
-- A node's keys are named from the prefix: '<prefix>:node:<node>:load'
-- (hash: score, rooms, report, draining) and '<prefix>:node:<node>:rooms'
-- (set of pinned rooms); one Redis, not a Cluster.
-- KEYS: room's node key, nodes zset (node -> last heartbeat ms)
-- ARGV: alive after ms, key prefix, room name, new-room legs
-- Returns the node, or false when no node may take the room.
local pin, nodes = KEYS[1], KEYS[2]
local alive_after, prefix, room, new_room_legs = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local current = redis.call('GET', pin)
if current then
  local beat = redis.call('ZSCORE', nodes, current)
  if beat and tonumber(beat) >= alive_after then return current end
  redis.call('SREM', prefix .. ':node:' .. current .. ':rooms', room)
  redis.call('DEL', pin)
end
local best, best_score = false, 0
for _, node in ipairs(redis.call('ZRANGEBYSCORE', nodes, alive_after, '+inf')) do
  local fields = redis.call('HMGET', prefix .. ':node:' .. node .. ':load', 'score', 'rooms', 'draining')
  if fields[3] ~= '1' then
    local reported, served = tonumber(fields[1] or '0'), tonumber(fields[2] or '0')
    local unserved = redis.call('SCARD', prefix .. ':node:' .. node .. ':rooms') - served
    if unserved < 0 then unserved = 0 end
    local weight = new_room_legs
    if served > 0 and reported / served > weight then weight = reported / served end
    local score = reported + weight * unserved
    if not best or score < best_score or (score == best_score and node < best) then
      best, best_score = node, score
    end
  end
end
if not best then return false end
redis.call('SET', pin, best)
redis.call('SADD', prefix .. ':node:' .. best .. ':rooms', room)
return best
