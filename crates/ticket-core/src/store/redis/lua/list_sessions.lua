local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '0', '-1')) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v and (ARGV[2] ~= '1' or cjson.decode(v)['user_key'] == ARGV[3]) then
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
