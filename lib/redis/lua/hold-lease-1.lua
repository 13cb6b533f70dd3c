--[[
  Takes the worker lease if it is free, or renews it if the caller holds it. One script for both,
  so that a holder whose earlier SET or renewal timed out on its side but was applied by Redis later
  (after a stall or CLIENT PAUSE) finds its own token and keeps leading instead of standing by
  until its own lease expires.

  The lease's value is `<token>/<epoch>`. The epoch is the fencing token of this tenure: Redis's
  TIME in microseconds when the lease was taken, so a later tenure (taken only after this one expired
  or was released) has a larger one. Every budget write carries it (see fenced-write-1.lua).

  KEYS[1]  the lease key
  ARGV[1]  the caller's token
  ARGV[2]  the time to live in milliseconds

  Returns {2, epoch} when the caller held the lease and it was renewed, {1, epoch} when it was free
  and is now the caller's, {0, ''} when another replica holds it.
]]
local prefix = ARGV[1] .. '/'
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #prefix) == prefix then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {2, string.sub(held, #prefix + 1)}
end
local now = redis.call('TIME')
local epoch = now[1] .. string.format('%06d', tonumber(now[2]))
if redis.call('SET', KEYS[1], prefix .. epoch, 'NX', 'PX', ARGV[2]) then
  return {1, epoch}
end
return {0, ''}
