-- Start a drain pass in one step: when the outbox holds entries and no
-- other drainer holds the lock, take the lock and read the first entries.
-- KEYS: outbox list, lock key
-- ARGV: owner token, lease (ms), how many entries to read at most
-- Returns {length, entries...}: the outbox's length and its first entries
-- with the lock taken; {0} when it is empty; {-1} when another holds the lock.
local length = redis.call('LLEN', KEYS[1])
if length == 0 then
  return {0}
end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {-1}
end
local result = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
table.insert(result, 1, length)
return result
