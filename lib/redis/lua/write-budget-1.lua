--[[
  Writes one budget hash together with its TTL, atomically: a reader never sees the new fields
  without the TTL, or half of an update.

  KEYS[1]          the budget hash (quantum:portfolio:budget:<SYMBOL>)
  ARGV[1]          TTL in seconds
  ARGV[2]          n, the number of fields to delete (optional fields that no longer apply)
  ARGV[3..2+n]     the fields to delete
  ARGV[3+n..]      field, value, field, value, ... to set

  Returns 1.
]]
local n = tonumber(ARGV[2])
if n > 0 then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 3, 2 + n))
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3 + n))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
