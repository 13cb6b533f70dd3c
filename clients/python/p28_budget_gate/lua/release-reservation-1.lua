--[[
  Releases the reservation of one plan (filled, cancelled, or blocked by a later gate) from the
  `reservations` field of the symbol's budget hash (see decide-plan-1.lua), at once instead of when
  it lapses. The field is deleted when no reservation is left.

  KEYS[1]  the symbol's budget hash
  ARGV[1]  planId

  Returns 1 when the plan held a reservation and it was removed, 0 when it held none.
]]
local stored = redis.call('HGET', KEYS[1], 'reservations')
if not stored then return 0 end
local ok, reservations = pcall(cjson.decode, stored)
if not ok or type(reservations) ~= 'table' or reservations[ARGV[1]] == nil then return 0 end
reservations[ARGV[1]] = nil
if next(reservations) == nil then
  redis.call('HDEL', KEYS[1], 'reservations')
else
  redis.call('HSET', KEYS[1], 'reservations', cjson.encode(reservations))
end
return 1
