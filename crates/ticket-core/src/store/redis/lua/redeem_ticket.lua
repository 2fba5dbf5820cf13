if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'conflict'}
end
local raw = redis.call('GETDEL', KEYS[1])
if not raw then
  return {'none'}
end
local user_key_json, realm_json, identity_json = string.match(raw, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t')
if not user_key_json then
  return {'legacy', raw}
end
if realm_json ~= ARGV[1] then
  return {'realm', raw}
end
local user_key = cjson.decode(user_key_json)
local value = '{"idle_ms":' .. ARGV[3] .. ',"user_key":' .. user_key_json ..
  ',"session":{"realm":' .. realm_json .. ',"id":' .. ARGV[2] ..
  ',"identity":' .. identity_json .. ',"csrf_token":' .. ARGV[9] .. '}}'
local status, evicted = insert_session(KEYS[2], ARGV[8] .. user_key, KEYS[3], KEYS[4], value,
  ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6], ARGV[7], user_key)
if status ~= 'ok' then
  return {status, raw}
end
local out = {'ok', raw}
for _, v in ipairs(evicted) do
  out[#out + 1] = v
end
return out
