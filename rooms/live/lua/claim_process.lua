-- Claim a process whose heartbeat is older than the cut-off; re-scoring it
-- to now is the claimer's lease.
-- KEYS: processes zset
-- ARGV: process, dead before ms, now ms
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
