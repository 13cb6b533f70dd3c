--[[
  The budget decision for one plan that is not a close by itself, and the reservation of an allowed
  increasing plan, in one atomic step on one key (so it works on Redis Cluster). Every gate calls
  this same script: the Node plugin, the worker's POST /v1/decisions, the Python package. Only what
  needs no Redis is decided by the caller before it is called (request checks, reduce-only and
  close actions, the emergency switches other than forceShadow).

  Reservations live in one field of the budget hash itself, `reservations`: a JSON object
  {"<planId>": ["<amountUsd>", <expiresAtMs>]}, expiry on the Redis clock (TIME) so that hosts
  with different clocks agree on what is still live. One field, read by the same HMGET as the
  budget's known fields, so a decision never reads a field it does not know (however large). The
  worker's writes never delete it (it deletes only the schema's optional fields); it goes when the
  hash expires. A live reservation of another plan counts against the headroom; the plan's own
  (the same planId asked again) does not, and is not made twice. Lapsed or unreadable entries are
  dropped when seen.

  KEYS[1]   the symbol's budget hash
  ARGV[1]   planId
  ARGV[2]   the request's symbol (the hash's `symbol` must match it)
  ARGV[3]   side: BUY, SELL, or '' when the plan has none
  ARGV[4]   qty (base units), or ''
  ARGV[5]   notionalUsd, or ''
  ARGV[6]   now, epoch ms on the caller's clock (ages of `timestamp` and `last_violation_ts`)
  ARGV[7]   staleAfterMs
  ARGV[8]   violationWindowMs
  ARGV[9]   maxClockSkewMs
  ARGV[10]  '1' to judge as if the hash said mode=shadow (forceShadow), else '0'
  ARGV[11]  reservation TTL in ms; '0' makes no reservation (live ones of others still count)
  ARGV[12]  '1' to append the hash's known fields (values in the order of KNOWN below), else '0'

  Returns an array of strings, '' where a value is absent:
    {reason, detail, mode, budgetUsd, positionNotionalUsd, projectedNotionalUsd, reservedUsd}
  then, with ARGV[12] = '1', the values of KNOWN (false for a missing field). Numbers are printed
  with 17 significant digits, so every caller reads back the same double.
]]

local KNOWN = {
  'symbol', 'budget_usd', 'stress_factor', 'equity_usd', 'portfolio_heat', 'cluster_stress',
  'vol_regime', 'mode', 'timestamp', 'base_risk_pct', 'position_amt', 'position_notional_usd',
  'over_budget_usd', 'last_violation_ts', 'position_price', 'position_status',
}
-- Bounds of the numeric fields (types/budget-hash.ts): {min, max, exclusiveMin, optional}. An
-- optional field may be absent; when present it must be valid.
local NUMBERS = {
  budget_usd = {0, nil}, stress_factor = {0, 1}, equity_usd = {0, nil}, portfolio_heat = {0, 1},
  cluster_stress = {0, 1}, vol_regime = {0, 1}, timestamp = {0, nil}, base_risk_pct = {0, 1, true},
  position_amt = {nil, nil, false, true}, position_notional_usd = {0, nil, false, true},
  over_budget_usd = {0, nil, false, true}, last_violation_ts = {0, nil, false, true},
  position_price = {0, nil, true, true},
}
local RESERVATIONS = 'reservations'
local READ = {}
for i, name in ipairs(KNOWN) do READ[i] = name end
READ[#READ + 1] = RESERVATIONS
local POSITION_STATUS = {ok = true, invalid = true, stale = true, unknown = true}
local MAX_DECIMAL_CHARS = 64

local function num(n)
  if n == nil then return '' end
  return string.format('%.17g', n)
end

-- A finite number from a decimal string as types/wire-number.ts reads it, else nil.
local function decimal(raw)
  if raw == nil or #raw > MAX_DECIMAL_CHARS then return nil end
  local text = string.match(raw, '^%s*(.-)%s*$')
  local mantissa = string.match(text, '^(.-)[eE][+-]?%d+$') or text
  if not (string.find(mantissa, '^[+-]?%d+%.?%d*$') or string.find(mantissa, '^[+-]?%.%d+$')) then return nil end
  local n = tonumber(text)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end

local function bounded(n, b)
  if n == nil then return false end
  if b[1] ~= nil and ((b[3] and n <= b[1]) or (not b[3] and n < b[1])) then return false end
  if b[2] ~= nil and n > b[2] then return false end
  return true
end

local function extra(h)
  if ARGV[12] ~= '1' then return {} end
  local out = {}
  for i, name in ipairs(KNOWN) do out[i] = h[name] or false end
  return out
end

local function reply(h, reason, detail, mode, budget, position, projected, reserved)
  local out = {reason, detail or '', mode or '', num(budget), num(position), num(projected), num(reserved)}
  for _, v in ipairs(extra(h)) do out[#out + 1] = v end
  return out
end

local fetched = redis.pcall('HMGET', KEYS[1], unpack(READ))
if fetched.err then
  if string.sub(fetched.err, 1, 9) == 'WRONGTYPE' then return {'invalid_budget_data', 'wrong_type', '', '', '', '', ''} end
  return redis.error_reply(fetched.err)
end
local h, present = {}, false
for i, name in ipairs(KNOWN) do
  if fetched[i] then
    h[name] = fetched[i]
    present = true
  end
end
if not present then return reply(h, 'no_budget_data') end

-- The live reservations of other plans; lapsed or unreadable entries are dropped.
local ttl = tonumber(ARGV[11]) or 0
local planId = ARGV[1]
local stored = fetched[#READ]
local reservations, reserved, ownLive, dirty, clock = {}, 0, false, false, nil
local function redisNow()
  if clock == nil then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
if stored then
  local ok, decoded = pcall(cjson.decode, stored)
  if ok and type(decoded) == 'table' then reservations = decoded else dirty = true end
  for id, entry in pairs(reservations) do
    local amount = type(entry) == 'table' and type(entry[1]) == 'string' and decimal(entry[1]) or nil
    local expires = type(entry) == 'table' and tonumber(entry[2]) or nil
    if amount == nil or amount < 0 or expires == nil or expires <= redisNow() then
      reservations[id] = nil
      dirty = true
    elseif id == planId then
      ownLive = true
    else
      reserved = reserved + amount
    end
  end
end
local function saveReservations()
  if next(reservations) == nil then
    redis.call('HDEL', KEYS[1], RESERVATIONS)
  else
    redis.call('HSET', KEYS[1], RESERVATIONS, cjson.encode(reservations))
  end
end

local function finish(...)
  if dirty then saveReservations() end
  return reply(...)
end

-- Validation, field by field in the schema's order; the detail names every field that fails.
local forceShadow = ARGV[10] == '1'
local failed = {}
local symbol = h.symbol
if symbol == nil or #symbol > 32 or not string.find(symbol, '^[A-Z0-9]+$') then failed[#failed + 1] = 'symbol' end
local values = {}
for _, name in ipairs(KNOWN) do
  local b = NUMBERS[name]
  if name == 'mode' then
    if h.mode ~= 'shadow' and h.mode ~= 'enforce' then failed[#failed + 1] = 'mode' end
  elseif name == 'position_status' then
    if h.position_status ~= nil and not POSITION_STATUS[h.position_status] then failed[#failed + 1] = 'position_status' end
  elseif b ~= nil then
    if h[name] == nil and b[4] then
      values[name] = nil
    else
      local n = decimal(h[name])
      if bounded(n, b) then values[name] = n else failed[#failed + 1] = name end
    end
  end
end

local mode = nil
if h.mode == 'shadow' or h.mode == 'enforce' then mode = forceShadow and 'shadow' or h.mode end
if #failed > 0 then return finish(h, 'invalid_budget_data', table.concat(failed, ','), mode) end
if symbol ~= ARGV[2] then return finish(h, 'invalid_budget_data', 'symbol', mode) end

local now = tonumber(ARGV[6])
local budget = values.budget_usd
local current = values.position_notional_usd
local ageMs = now - values.timestamp * 1000
if ageMs > tonumber(ARGV[7]) then return finish(h, 'stale_budget_data', 'stale', mode, budget, current) end
if -ageMs > tonumber(ARGV[9]) then return finish(h, 'stale_budget_data', 'timestamp_in_future', mode, budget, current) end
local lastViolation = values.last_violation_ts
if lastViolation ~= nil and lastViolation * 1000 - now > tonumber(ARGV[9]) then
  return finish(h, 'invalid_budget_data', 'last_violation_ts', mode, budget, current)
end

-- What the plan does to the position (plugin/decide.ts planEffect), or its own size when the
-- position is unknown.
local side = ARGV[3]
local qty = tonumber(ARGV[4])
local notional = tonumber(ARGV[5])
local price = values.position_price
local status = h.position_status
-- Unknown: a status that says so, or no position fields (the upstream service's 10-field hash).
local unknown = values.position_amt == nil or values.position_notional_usd == nil
  or status == 'invalid' or status == 'stale' or status == 'unknown'

local function reduces(position, direction, size)
  if position == 0 or (position > 0 and direction == 1) or (position < 0 and direction == -1) then return false end
  return size <= 2 * math.abs(position)
end

local reducing, projected = false, 0
if unknown then
  if notional ~= nil then projected = notional
  elseif qty ~= nil and price ~= nil then projected = qty * price end
else
  local amt = values.position_amt
  local signed = current
  if amt < 0 then signed = -current end
  local direction = -1
  if side == 'BUY' then direction = 1 end
  if side ~= '' and qty ~= nil then
    reducing = reduces(amt, direction, qty)
    if price ~= nil then projected = math.abs(amt + direction * qty) * price
    elseif notional ~= nil then projected = math.abs(signed + direction * notional)
    else projected = current end
  elseif side ~= '' and notional ~= nil then
    reducing = reduces(signed, direction, notional)
    projected = math.abs(signed + direction * notional)
  elseif notional ~= nil then projected = current + notional
  elseif qty ~= nil and price ~= nil then projected = current + qty * price
  else projected = current end
end

if reducing then return finish(h, 'reduce_only', '', mode, budget, current, projected) end
-- An unknown position's fields say nothing: the decision does not show them.
local shown = current
if unknown then shown = nil end

local sized = notional ~= nil or (qty ~= nil and price ~= nil)
local total = projected + reserved
local detail = nil
if total > budget then
  detail = 'projected_over_budget'
elseif lastViolation ~= nil and now - lastViolation * 1000 < tonumber(ARGV[8]) then
  detail = 'recent_violation'
end
local suffix = ''
if unknown then suffix = 'position_unknown' end
local function named(d)
  if d == nil then return suffix end
  if suffix == '' then return d end
  return d .. ',' .. suffix
end

if detail == nil then
  if not sized then return finish(h, 'invalid_request', named('plan_size_unknown'), mode, budget, shown, total, reserved) end
  local increase = projected
  if not unknown then increase = math.max(0, projected - current) end
  if ttl > 0 and not ownLive and increase > 0 then
    reservations[planId] = {num(increase), math.floor(redisNow() + ttl)}
    dirty = true
  end
  return finish(h, 'within_budget', named(nil), mode, budget, shown, total, reserved)
end
if mode == 'enforce' then return finish(h, 'p28_budget_violation', named(detail), mode, budget, shown, total, reserved) end
return finish(h, 'shadow_would_block', named(detail), mode, budget, shown, total, reserved)
