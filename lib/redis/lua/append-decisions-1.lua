--[[
  Appends a batch of gate decisions to the decision log in one command: one round trip and one
  command for the whole batch instead of one XADD each (types/decision-log-entry.ts: one field, d,
  holding the packed entry).

  KEYS[1]  the decision log stream (quantum:stream:p28.decisions)
  ARGV[1]  the approximate length bound (XADD MAXLEN ~)
  ARGV[2..] the packed entries, oldest first

  Returns the number of entries appended. An error part-way leaves the entries before it appended
  (the caller counts the whole batch as not confirmed).
]]
local key = KEYS[1]
local maxlen = ARGV[1]
for i = 2, #ARGV do
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'd', ARGV[i])
end
return #ARGV - 1
