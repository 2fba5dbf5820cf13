local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
local stored = cjson.decode(v)
local idle = tonumber(string.format('%d', stored['idle_ms']))
redis.call('PEXPIRE', KEYS[1], int(idle))
extend(KEYS[2], idle)
extend(ARGV[1] .. stored['user_key'], idle)
return v
