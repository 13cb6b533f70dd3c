--[[
  Writes one hash (a budget hash, the heartbeat) only if the writer's lease tenure is still the
  newest: the fencing check and the write are one atomic step in Redis, so a leader that lost its
  lease while paused (SIGSTOP, a long GC, a frozen VM) can never overwrite its successor's writes,
  however late its commands arrive.

  Two ways to check, chosen by the caller with the number of keys:
  - 2 keys (standalone Redis, Sentinel): the lease key must still hold the writer's lease value.
  - 1 key (Redis Cluster, where the lease and the hash live in different slots): the hash's own
    `writer_epoch` must not be newer than the writer's epoch (the epoch is stored in every write).

  KEYS[1]  the hash
  KEYS[2]  the lease key (optional)
  ARGV[1]  the writer's epoch (digits: Redis TIME in microseconds when its tenure began)
  ARGV[2]  the writer's lease value (`<token>/<epoch>`), checked only with KEYS[2]
  ARGV[3]  EXPIRE in seconds after the write, 0 for none
  ARGV[4]  n, the number of fields to delete first
  ARGV[5 .. 4+n]  fields to delete
  ARGV[5+n ..]    field, value pairs to set

  Returns 1 when written, 0 when refused because a newer tenure wrote the hash, -1 when refused
  because the lease is no longer the writer's.
]]
if #KEYS > 1 then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return -1
  end
else
  local held = tonumber(redis.call('HGET', KEYS[1], 'writer_epoch'))
  if held and held > tonumber(ARGV[1]) then
    return 0
  end
end
local n = tonumber(ARGV[4])
if n > 0 then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 5, 4 + n))
end
redis.call('HSET', KEYS[1], 'writer_epoch', ARGV[1], unpack(ARGV, 5 + n, #ARGV))
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
