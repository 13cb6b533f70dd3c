--[[
  Renews the worker lease if, and only if, the caller still holds it (compare-and-pexpire).

  KEYS[1]  the lease key
  ARGV[1]  the caller's instance id (the value it set with SET NX PX)
  ARGV[2]  the new time to live in milliseconds

  Returns 1 when the lease was renewed, 0 when it is held by someone else or has expired.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
