-- Release the drain lock if this drainer still holds it.
-- KEYS: lock key
-- ARGV: owner token
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
