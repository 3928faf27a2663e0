-- Claim a media node whose heartbeat is older than the cut-off; re-scoring
-- it to now is the claimer's lease.
-- KEYS: nodes zset
-- ARGV: node, dead before ms, now ms
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not beat or tonumber(beat) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
