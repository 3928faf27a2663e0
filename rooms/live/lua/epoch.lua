-- The live state's epoch: the value written when this state began. A
-- missing or different epoch means the state was lost (a Redis restarted
-- without persistence, a flush, a failover to an empty replica).
-- KEYS: epoch key
-- ARGV: the epoch to start with if there is none
local current = redis.call('GET', KEYS[1])
if current then
  return current
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
