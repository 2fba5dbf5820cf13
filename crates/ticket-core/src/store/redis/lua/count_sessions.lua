local live = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '0', '-1')) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then
    live = live + 1
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return live
