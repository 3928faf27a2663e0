-- Set or clear a node's draining flag, if the node is registered.
-- KEYS: nodes zset, node's load hash
-- ARGV: node, '1' to drain, '0' to take new rooms again
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[2], 'draining', '1')
else
  redis.call('HDEL', KEYS[2], 'draining')
end
return 1
