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
  ARGV[11]  reservation TTL in ms; '0' makes no reservation and writes nothing (live ones of others
            still count)
  ARGV[12]  '1' to append the hash's known fields (values in the order of KNOWN below), '0' not to,
            '2' to append them only when they differ from the caller's copy in ARGV[13]
  ARGV[13]  with ARGV[12] = '2': the caller's copy of the known fields' values, joined by NUL
            bytes, '' for a missing field; a copy in which no value is '' and none holds a NUL byte
            (any other copy may be taken for values it is not)

  Returns an array of strings, '' where a value is absent:
    {reason, detail, mode, budgetUsd, positionNotionalUsd, projectedNotionalUsd, reservedUsd}
  then, with ARGV[12] = '1', the values of KNOWN (false for a missing field); with ARGV[12] = '2',
  the same values when they differ from the copy, or the one value '=' when they are the same.
  A key that holds no hash gives the first seven alone. Numbers are printed with 17 significant
  digits, so every caller reads back the same double.
]]

-- Every call runs this chunk from the top, so it builds no tables it can do without: the fields
-- are read by position, checked in straight-line code, in the schema's order.
local RESERVATIONS = 'reservations'
local KNOWN_COUNT = 16
local find, tonumber, huge = string.find, tonumber, math.huge

local function num(n)
  if n == nil then return '' end
  return string.format('%.17g', n)
end

-- A finite number from a decimal string as types/wire-number.ts reads it (surrounding blanks
-- allowed; no hex, inf or nan, nothing after the number, at most 64 characters), else nil.
-- tonumber takes exactly the decimal forms and blanks, plus hex (which contains an x or an X), the
-- forms of inf and nan (which give a number that is not finite), and anything after a NUL byte (it
-- reads a C string): a finite number from a string without x, X or NUL is a decimal. Plain finds,
-- not a character class: this runs for every number of every decision, and a pattern costs several
-- times the conversion.
local function decimal(raw)
  if not raw or #raw > 64 then return nil end
  local n = tonumber(raw)
  if n == nil or n ~= n or n == huge or n == -huge or find(raw, 'x', 1, true) or find(raw, 'X', 1, true)
    or find(raw, '\0', 1, true) then return nil end
  return n
end

local fetched = redis.pcall('HMGET', KEYS[1], 'symbol', 'budget_usd', 'stress_factor', 'equity_usd', 'portfolio_heat',
  'cluster_stress', 'vol_regime', 'mode', 'timestamp', 'base_risk_pct', 'position_amt', 'position_notional_usd',
  'over_budget_usd', 'last_violation_ts', 'position_price', 'position_status', RESERVATIONS)
if fetched.err then
  if string.sub(fetched.err, 1, 9) == 'WRONGTYPE' then return {'invalid_budget_data', 'wrong_type', '', '', '', '', ''} end
  return redis.error_reply(fetched.err)
end

-- With ARGV[12] = '2' the copy is the same when the stored values, joined as the caller joined
-- its copy, give the same text and none of them is '': the copy holds 15 NUL bytes, all of them
-- separators, so the stored values hold none and split into the same 16 values, '' meaning missing
-- on both sides.
local function sameAsCopy()
  local parts = {}
  for i = 1, KNOWN_COUNT do
    local v = fetched[i]
    if v == '' then return false end
    parts[i] = v or ''
  end
  return table.concat(parts, '\0') == ARGV[13]
end

local function reply(reason, detail, mode, budget, position, projected, reserved)
  local out = {reason, detail or '', mode or '', num(budget), num(position), num(projected), num(reserved)}
  local fields = ARGV[12]
  if fields == '2' and sameAsCopy() then
    out[8] = '='
  elseif fields == '1' or fields == '2' then
    for i = 1, KNOWN_COUNT do out[7 + i] = fetched[i] end
  end
  return out
end

local present = false
for i = 1, KNOWN_COUNT do
  if fetched[i] then
    present = true
    break
  end
end
if not present then return reply('no_budget_data') end

-- The live reservations of other plans; lapsed or unreadable entries are dropped.
local ttl = tonumber(ARGV[11]) or 0
local planId = ARGV[1]
local stored = fetched[KNOWN_COUNT + 1]
local reservations, reserved, ownLive, dirty, clock = nil, 0, false, false, nil
local function redisNow()
  if clock == nil then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
if stored then
  local ok, decoded = pcall(cjson.decode, stored)
  if ok and type(decoded) == 'table' then reservations = decoded else reservations, dirty = {}, true end
  for id, entry in pairs(reservations) do
    local amount = type(entry) == 'table' and type(entry[1]) == 'string' and decimal(entry[1]) or nil
    local expires = type(entry) == 'table' and type(entry[2]) == 'number' and entry[2] or nil
    -- cjson reads nan and inf: an expiry that is not a finite number is unreadable, never live forever.
    if amount == nil or amount < 0 or expires == nil or expires ~= expires or expires == huge or expires <= redisNow() then
      reservations[id] = nil
      dirty = true
    elseif id == planId then
      ownLive = true
    else
      reserved = reserved + amount
    end
  end
end

-- The field with one reservation more when nothing else in it changes (set below): the stored
-- text, which decoded to a non-empty object, ends with its brace and holds no NUL byte (cjson stops
-- reading at one), with the entry spliced in before its closing brace.
-- cjson.encode of the whole table would give the same object in another key order, for several
-- times the cost.
local spliced = nil

-- Only a gate that reserves (ttl > 0) writes, lapsed entries included: a gate with reservations off
-- writes nothing, so it can run under a read-only ACL user.
local function finish(...)
  if spliced then
    redis.call('HSET', KEYS[1], RESERVATIONS, spliced)
  elseif dirty and ttl > 0 then
    if next(reservations) == nil then
      redis.call('HDEL', KEYS[1], RESERVATIONS)
    else
      redis.call('HSET', KEYS[1], RESERVATIONS, cjson.encode(reservations))
    end
  end
  return reply(...)
end

-- Validation in the schema's order (types/budget-hash.ts, bounds included); the detail names
-- every field that fails. An optional field may be absent; present, it must be valid.
local failed = nil
local function fail(name)
  if failed == nil then failed = name else failed = failed .. ',' .. name end
end
local function number(i, name, min, max, exclusiveMin, optional)
  local raw = fetched[i]
  if not raw and optional then return nil end
  local n = decimal(raw)
  if n == nil or (min ~= nil and (n < min or (exclusiveMin and n == min))) or (max ~= nil and n > max) then
    fail(name)
    return nil
  end
  return n
end

local symbol = fetched[1]
if not symbol or #symbol > 32 or not find(symbol, '^[A-Z0-9]+$') then fail('symbol') end
local budget = number(2, 'budget_usd', 0)
number(3, 'stress_factor', 0, 1)
number(4, 'equity_usd', 0)
number(5, 'portfolio_heat', 0, 1)
number(6, 'cluster_stress', 0, 1)
number(7, 'vol_regime', 0, 1)
local hashMode = fetched[8]
if hashMode ~= 'shadow' and hashMode ~= 'enforce' then fail('mode') end
local timestamp = number(9, 'timestamp', 0)
number(10, 'base_risk_pct', 0, 1, true)
local amt = number(11, 'position_amt', nil, nil, false, true)
local current = number(12, 'position_notional_usd', 0, nil, false, true)
number(13, 'over_budget_usd', 0, nil, false, true)
local lastViolation = number(14, 'last_violation_ts', 0, nil, false, true)
local price = number(15, 'position_price', 0, nil, true, true)
local status = fetched[16]
if status and status ~= 'ok' and status ~= 'invalid' and status ~= 'stale' and status ~= 'unknown' then fail('position_status') end

local mode = nil
if hashMode == 'shadow' or hashMode == 'enforce' then mode = (ARGV[10] == '1') and 'shadow' or hashMode end
if failed ~= nil then return finish('invalid_budget_data', failed, mode) end
if symbol ~= ARGV[2] then return finish('invalid_budget_data', 'symbol', mode) end

local now = tonumber(ARGV[6])
local ageMs = now - timestamp * 1000
if ageMs > tonumber(ARGV[7]) then return finish('stale_budget_data', 'stale', mode, budget, current) end
if -ageMs > tonumber(ARGV[9]) then return finish('stale_budget_data', 'timestamp_in_future', mode, budget, current) end
if lastViolation ~= nil and lastViolation * 1000 - now > tonumber(ARGV[9]) then
  return finish('invalid_budget_data', 'last_violation_ts', mode, budget, current)
end

-- What the plan does to the position (plugin/decide.ts planEffect), or its own size when the
-- position is unknown.
local side = ARGV[3]
local qty = tonumber(ARGV[4])
local notional = tonumber(ARGV[5])
-- Unknown: a status that says so, or no position fields (the upstream service's 10-field hash).
local unknown = amt == nil or current == nil
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

if reducing then return finish('reduce_only', '', mode, budget, current, projected) end
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
  if not sized then return finish('invalid_request', named('plan_size_unknown'), mode, budget, shown, total, reserved) end
  local increase = projected
  if not unknown then increase = math.max(0, projected - current) end
  if ttl > 0 and not ownLive and increase > 0 then
    local amount, expires = num(increase), math.floor(redisNow() + ttl)
    if reservations and not dirty and next(reservations) ~= nil and string.byte(stored, -1) == 125
      and not find(stored, '\0', 1, true) then
      spliced = string.sub(stored, 1, -2) .. ',' .. cjson.encode(planId) .. ':["' .. amount .. '",' .. string.format('%.14g', expires) .. ']}'
    end
    reservations = reservations or {}
    reservations[planId] = {amount, expires}
    dirty = true
  end
  return finish('within_budget', named(nil), mode, budget, shown, total, reserved)
end
if mode == 'enforce' then return finish('p28_budget_violation', named(detail), mode, budget, shown, total, reserved) end
return finish('shadow_would_block', named(detail), mode, budget, shown, total, reserved)
