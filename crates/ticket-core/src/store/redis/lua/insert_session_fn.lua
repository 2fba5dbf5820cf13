local function insert_session(key, user_index, realm_index, seq_key, value, idle_ms, max, evict, base, id, user_key)
  local idle = tonumber(idle_ms)
  local seq = redis.call('INCR', seq_key)
  local score = int(seq)
  local live = {}
  local new_user = false
  if max > 0 then
    local members = redis.call('ZRANGE', user_index, '0', '-1')
    new_user = #members == 0
    for _, member in ipairs(members) do
      local v = redis.call('GET', base .. member)
      if v and cjson.decode(v)['user_key'] == user_key then
        live[#live + 1] = {member, v}
      else
        redis.call('ZREM', user_index, member)
        if not v then
          redis.call('ZREM', realm_index, member)
        end
      end
    end
  else
    new_user = sweep(user_index, base, 3, seq) == 0
  end
  local excess = 0
  if max > 0 then
    excess = #live + 1 - max
  end
  if excess > 0 and not evict then
    return 'limit', {}
  end
  -- Before ending anyone's session, make sure the new one can be stored; without
  -- evictions the `SET NX` below finds out by itself.
  if excess > 0 and redis.call('EXISTS', key) == 1 then
    return 'conflict', {}
  end
  local evicted = {}
  for i = 1, excess do
    local member, v = live[i][1], live[i][2]
    redis.call('DEL', base .. member)
    redis.call('ZREM', user_index, member)
    redis.call('ZREM', realm_index, member)
    evicted[#evicted + 1] = v
  end
  if seq % 4 == 0 then
    sweep(realm_index, base, 8, seq / 4)
  end
  if not redis.call('SET', key, value, 'PX', idle_ms, 'NX') then
    return 'conflict', {}
  end
  redis.call('ZADD', user_index, score, id)
  redis.call('ZADD', realm_index, score, id)
  if new_user then
    redis.call('PEXPIRE', user_index, idle_ms)
  else
    extend(user_index, idle)
  end
  extend(realm_index, idle)
  return 'ok', evicted
end
