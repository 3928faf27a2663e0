-- The drainer applied the first COUNT entries of the outbox: remove them,
-- unless the head is no longer the entry it read (another drainer, whose
-- lease outlived this one's, removed them first).
-- KEYS: outbox list
-- ARGV: the first entry read, count
-- Returns 1 if removed, 0 if not
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
  return 1
end
return 0
