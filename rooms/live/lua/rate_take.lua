-- Take one token from a token bucket (full on first use); 1 if taken, 0 if empty.
-- Time is the Redis server's, so web processes with skewed clocks share one bucket.
-- KEYS: bucket hash (tokens, at_us)
-- ARGV: rate per second, burst
local bucket = KEYS[1]
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', bucket, 'tokens', 'at_us')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + (now - tonumber(state[2])) * rate / 1000000)
end
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at_us', tostring(now))
-- Gone once it would be full again: a missing bucket is a full one.
redis.call('PEXPIRE', bucket, math.ceil((burst - tokens) / rate * 1000) + 1000)
return taken
