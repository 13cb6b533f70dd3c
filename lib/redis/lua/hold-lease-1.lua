--[[
  Takes the worker lease if it is free, or renews it if the caller holds it. One script for both,
  so that a holder whose earlier SET or renewal timed out on its side but was applied by Redis later
  (after a stall or CLIENT PAUSE) finds its own token and keeps leading instead of standing by
  until its own lease expires.

  KEYS[1]  the lease key
  ARGV[1]  the caller's token
  ARGV[2]  the time to live in milliseconds

  Returns 2 when the caller held the lease and it was renewed, 1 when it was free and is now the
  caller's, 0 when another replica holds it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 2
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
