-- A public or private chat message in one step: the session's epoch is
-- checked, a token taken from the sender identity's bucket, the room's
-- event counted (a public message kept in the recent history) and the
-- archive's entry queued with that count. One round trip instead of four,
-- each of which cost the web process about as much as its deliveries.
-- KEYS: epoch, identity bucket hash (tokens, at_us), room hash, chat list, outbox list
-- ARGV: the session's epoch, rate per second (0: no limit), burst,
--       message JSON ('' for a private one), history length,
--       the outbox entry without its last two characters ('}}'),
--       the room's group channel to publish the message's event on ('': none; the
--       caller sends it) and that event's serialized channel message without
--       the value of its last member, 'seq' (rooms.channel_layers.GroupPublication)
-- Returns {'epoch'} when the epoch is gone or another, {'rate'} when the
-- bucket is empty (nothing changed in either case), else {'ok', seq}.
local epoch = redis.call('GET', KEYS[1])
if epoch ~= ARGV[1] then
  return {'epoch'}
end
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
if rate > 0 then
  -- As rate_take.lua: time is the Redis server's, the bucket full on first use.
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
  local state = redis.call('HMGET', KEYS[2], 'tokens', 'at_us')
  local tokens = burst
  if state[1] then
    tokens = math.min(burst, tonumber(state[1]) + (now - tonumber(state[2])) * rate / 1000000)
  end
  if tokens < 1 then
    redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at_us', tostring(now))
    redis.call('PEXPIRE', KEYS[2], math.ceil((burst - tokens) / rate * 1000) + 1000)
    return {'rate'}
  end
  tokens = tokens - 1
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at_us', tostring(now))
  redis.call('PEXPIRE', KEYS[2], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[4], ARGV[4])
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[5]), -1)
end
redis.call('RPUSH', KEYS[5], ARGV[6] .. ',"seq":' .. seq .. '}}')
-- Published here, the event goes out in count order and costs the web
-- process no round trip of its own.
if ARGV[7] ~= '' then
  redis.call('PUBLISH', ARGV[7], ARGV[8] .. cmsgpack.pack(seq))
end
return {'ok', seq}
