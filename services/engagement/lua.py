"""Lua scripts of the engagement store. Each touches the keys of exactly one hash tag (Redis Cluster ready)."""

from __future__ import annotations

from services.engagement.scoring import COUNTERS, C

# KEYS: {emp:<id>}:s, {emp:<id>}:p, {emp:<id>}:gone, {emp:<id>}:q
# ARGV: topic tag, keep days, pair cap, pair memory days, the ops as one string: ops separated by \x1e, the
#       7 fields of an op (partition, offset, kind, day, x, y, z; see scoring.Op) by \x1f. One argument and one
#       HMGET per hash keep the cost per call low; then the pruning period in days.
# Applies each op only when its offset is above the partition's high-water mark, raising the mark in the
# same call. Returns one string: gone, applied, duplicates, late, as_of_day, dep, md separated by \x1f.
APPLY = (
    r"""
local S, P, GONE, Q = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', GONE) == 1 then return table.concat({'1', '0', '0', '0', '-1', '', ''}, '\31') end
local tag = ARGV[1]
local keep = tonumber(ARGV[2])
local pcap = tonumber(ARGV[3])
local pmem = tonumber(ARGV[4])
local every = tonumber(ARGV[6])
local NC, RECEIVED, ACTIONS, UPDATES = $NC, $RECEIVED, $ACTIONS, $UPDATES

local ops = {}
local sf, sseen, pf, pseen, qf, qseen = {'a', 'w', 'pt', 'dt', 'dep', 'md'}, {}, {}, {}, {}, {}
local function want(list, seen, f)
  if not seen[f] then seen[f] = true; list[#list + 1] = f end
end
for rec in string.gmatch(ARGV[5], '[^\30]+') do
  local t = {}
  for field in string.gmatch(rec .. '\31', '([^\31]*)\31') do t[#t + 1] = field end
  ops[#ops + 1] = t
  want(sf, sseen, 'o:' .. tag .. ':' .. t[1])
  local kind = t[3]
  if kind ~= 'd' then want(sf, sseen, t[4]) end
  if kind == 'g' then
    want(qf, qseen, t[4] .. ':' .. t[6])
    want(pf, pseen, '-' .. t[6])
  elseif kind == 'r' then
    want(pf, pseen, t[5])
  end
end
local function prefetch(key, fields, into)
  for s = 1, #fields, 1000 do
    local last = math.min(s + 999, #fields)
    local got = redis.call('HMGET', key, unpack(fields, s, last))
    for j = s, last do into[fields[j]] = got[j - s + 1] end
  end
end
local pre, ppre, qpre = {}, {}, {}
prefetch(S, sf, pre)
prefetch(P, pf, ppre)
prefetch(Q, qf, qpre)

local a = tonumber(pre['a']) or -1
local w = tonumber(pre['w']) or -1
local pt = tonumber(pre['pt']) or -1
local dt = tonumber(pre['dt']) or -1
local dep = pre['dep'] or ''
local a0, w0 = a, w
local marks, newmarks, days, paircounts, people = {}, {}, {}, {}, {}

local function bucket(ds)
  local c = days[ds]
  if c == nil then
    c = {}
    for j = 1, NC do c[j] = 0 end
    local v = pre[ds]
    if v then
      for letter, num in string.gmatch(v, '(%a)(%d+)') do c[string.byte(letter) - 96] = tonumber(num) end
    end
    days[ds] = c
  end
  return c
end

local function person(f, value)
  local cur = people[f]
  if cur == nil then cur = tonumber(ppre[f]) or -1 end
  if value > cur then cur = value end
  people[f] = cur
end

local applied, dups, late = 0, 0, 0
for _, t in ipairs(ops) do
  local part, offs, kind, ds, x, y, z = t[1], t[2], t[3], t[4], t[5], t[6], t[7]
  local off = tonumber(offs)
  local f = 'o:' .. tag .. ':' .. part
  local m = marks[f]
  if m == nil then m = tonumber(pre[f]) or -1; marks[f] = m end
  if off <= m then
    dups = dups + 1
  else
    marks[f] = off
    newmarks[f] = offs
    applied = applied + 1
    local d = tonumber(ds)
    if kind == 'd' then
      if tonumber(x) >= dt then
        dt = tonumber(x)
        dep = y
        redis.call('HSET', S, 'dt', x, 'dep', y)
        if z ~= '' then redis.call('HSET', S, 'nm', z) end
      end
    elseif kind == 'l' then
      redis.call('HINCRBY', S, 'l' .. x, 1)
      if z == '1' then redis.call('HINCRBY', S, 'l3', 1) end
      if d > w then w = d end
      if d >= a - keep + 1 then
        if d > a then a = d end
        local c = bucket(ds)
        c[ACTIONS] = c[ACTIONS] + 1
      end
    elseif kind == 'f' then
      local t = tonumber(x)
      if t >= pt then
        pt = t
        redis.call('HSET', S, 'pt', x, 'pc', y)
      end
      if d > w then w = d end
      if d >= a - keep + 1 then
        if d > a then a = d end
        local c = bucket(ds)
        c[UPDATES] = c[UPDATES] + 1
      else
        late = late + 1
      end
    elseif d < a - keep + 1 then
      late = late + 1
    else
      if d > a then a = d end
      local c = bucket(ds)
      if kind == 'c' then
        if x ~= '' then c[tonumber(x) + 1] = c[tonumber(x) + 1] + 1 end
        if z ~= '' then c[tonumber(z) + 1] = c[tonumber(z) + 1] + 1 end
        if y == '1' and d > w then w = d end
      elseif kind == 'g' then
        if d > w then w = d end
        local credit = true
        if d >= w - pmem + 1 then
          local q = ds .. ':' .. y
          local qc = paircounts[q]
          if qc == nil then qc = tonumber(qpre[q]) or 0 end
          if qc >= pcap then credit = false else qc = qc + 1 end
          paircounts[q] = qc
        end
        if credit then
          c[tonumber(x) + 1] = c[tonumber(x) + 1] + 1
          if z ~= '' then c[tonumber(z) + 1] = c[tonumber(z) + 1] + 1 end
        else
          c[ACTIONS] = c[ACTIONS] + 1
        end
        person('-' .. y, d)
      elseif kind == 'r' then
        c[RECEIVED] = c[RECEIVED] + 1
        person(x, d * 2 + tonumber(y))
      end
    end
  end
end

local function hset_all(key, flat)
  for s = 1, #flat, 400 do
    redis.call('HSET', key, unpack(flat, s, math.min(s + 399, #flat)))
  end
end

local function hdel_all(key, flat)
  for s = 1, #flat, 400 do
    redis.call('HDEL', key, unpack(flat, s, math.min(s + 399, #flat)))
  end
end

if applied > 0 then
  local flat = {}
  for ds, c in pairs(days) do
    local parts = {}
    for j = 1, NC do
      if c[j] ~= 0 then parts[#parts + 1] = string.char(96 + j) .. string.format('%d', c[j]) end
    end
    if #parts > 0 then
      flat[#flat + 1] = ds
      flat[#flat + 1] = table.concat(parts)
    end
  end
  for f, offs in pairs(newmarks) do flat[#flat + 1] = f; flat[#flat + 1] = offs end
  flat[#flat + 1] = 'a'; flat[#flat + 1] = string.format('%d', a)
  flat[#flat + 1] = 'w'; flat[#flat + 1] = string.format('%d', w)
  hset_all(S, flat)
  local qflat = {}
  for q, qc in pairs(paircounts) do qflat[#qflat + 1] = q; qflat[#qflat + 1] = string.format('%d', qc) end
  if #qflat > 0 then hset_all(Q, qflat) end
  local pf = {}
  for f, v in pairs(people) do pf[#pf + 1] = f; pf[#pf + 1] = string.format('%d', v) end
  if #pf > 0 then hset_all(P, pf) end
  redis.call('HINCRBY', S, 'v', 1)
end

if w > w0 then
  local plo = w - pmem + 1
  local del = {}
  for _, f in ipairs(redis.call('HKEYS', Q)) do
    if tonumber(string.match(f, '^(%d+):')) < plo then del[#del + 1] = f end
  end
  if #del > 0 then hdel_all(Q, del) end
end

-- Days and colleagues that left the longest window are pruned every few days (not every day): figures
-- ignore them anyway, and the scan is the most expensive part of the script.
if a0 >= 0 and math.floor(a / every) > math.floor(a0 / every) then
  local lo = a - keep + 1
  local del = {}
  for _, f in ipairs(redis.call('HKEYS', S)) do
    local b = string.byte(f, 1)
    if b >= 48 and b <= 57 and tonumber(f) < lo then del[#del + 1] = f end
  end
  if #del > 0 then hdel_all(S, del) end
  local pdel = {}
  local pf = redis.call('HGETALL', P)
  for j = 1, #pf, 2 do
    local f, v = pf[j], tonumber(pf[j + 1])
    local d = v
    if string.byte(f, 1) ~= 45 then d = math.floor(v / 2) end
    if d < lo then pdel[#pdel + 1] = f end
  end
  if #pdel > 0 then hdel_all(P, pdel) end
end

return table.concat({'0', applied, dups, late, a, dep, pre['md'] or ''}, '\31')
""".replace("$NC", str(len(COUNTERS)))
    .replace("$RECEIVED", str(C["received"] + 1))
    .replace("$ACTIONS", str(C["actions"] + 1))
    .replace("$UPDATES", str(C["profile_updates"] + 1))
)

# KEYS: {emp:<id>}:s, {emp:<id>}:p, {emp:<id>}:gone, {emp:<id>}:q; ARGV: ttl seconds.
# Marks the employee forgotten (remembering the departments still to clean) and deletes the state.
# Returns {already_forgotten, departments}.
FORGET = """
local g = redis.call('GET', KEYS[3])
if g then return {1, g} end
local t = redis.call('HMGET', KEYS[1], 'dep', 'md')
local depts = (t[1] or '') .. ',' .. (t[2] or '')
redis.call('SET', KEYS[3], depts, 'EX', ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
return {0, depts}
"""

# KEYS: one string holding an integer; ARGV: candidate. Keeps the maximum; returns the previous value.
MAX = """
local cur = redis.call('GET', KEYS[1])
if cur == false or tonumber(ARGV[1]) > tonumber(cur) then redis.call('SET', KEYS[1], ARGV[1]) end
return cur
"""

# KEYS: a dirty ZSET; ARGV: member, score pairs. Removes a member only if its score is unchanged, so a
# change marked while its previous figures were being published is not lost.
UNDIRTY = """
local removed = 0
for i = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""
