local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '0', '-1')) do
  local key = ARGV[1] .. id
  local v = redis.call('GET', key)
  if v and cjson.decode(v)['user_key'] == ARGV[2] then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], id)
    out[#out + 1] = v
  elseif not v then
    redis.call('ZREM', KEYS[2], id)
  end
end
redis.call('DEL', KEYS[1])
return out
