local function int(n)
  return string.format('%d', n)
end
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, int(ms))
  end
end
local function sweep(index, base, n, cursor)
  local size = redis.call('ZCARD', index)
  if size == 0 then
    return 0
  end
  local from = (cursor * n) % size
  for _, id in ipairs(redis.call('ZRANGE', index, int(from), int(from + n - 1))) do
    if redis.call('EXISTS', base .. id) == 0 then
      redis.call('ZREM', index, id)
    end
  end
  return size
end
