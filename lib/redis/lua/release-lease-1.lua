--[[
  Releases the worker lease if, and only if, the caller still holds it (compare-and-delete), so a
  replica that lost the lease can never delete its successor's.

  KEYS[1]  the lease key
  ARGV[1]  the caller's token (the lease's value is `<token>/<epoch>`)

  Returns 1 when the lease was deleted, 0 when it was not the caller's (or had already expired).
]]
local prefix = ARGV[1] .. '/'
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #prefix) == prefix then
  return redis.call('DEL', KEYS[1])
end
return 0
