-- Count one room event and, for a public message, keep it in the recent
-- history, in one step (a joiner sees it in history or as an event, once).
-- KEYS: room hash, chat list
-- ARGV: message JSON ('' to count only), history length
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if ARGV[1] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
end
return seq
