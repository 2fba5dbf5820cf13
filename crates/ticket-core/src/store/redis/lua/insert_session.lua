local status, evicted = insert_session(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2],
  tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5], ARGV[6], ARGV[7])
if status == 'limit' then
  return redis.error_reply('LIMIT the user already has the maximum number of sessions')
elseif status == 'conflict' then
  return redis.error_reply('CONFLICT a session with this id already exists')
end
return evicted
