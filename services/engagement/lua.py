"""Lua scripts of the engagement store. Each touches the keys of exactly one hash tag (Redis Cluster ready)."""

from __future__ import annotations

from services.engagement.scoring import COUNTERS, C

# KEYS: {emp:<id>}:s, {emp:<id>}:p, {emp:<id>}:gone
# ARGV: topic tag, keep days, pair cap, pair memory days, then ops of 7 fields:
#       partition, offset, kind, day, x, y, z (see scoring.Op)
# Applies each op only when its offset is above the partition's high-water mark, raising the mark in the
# same call. Returns {gone, applied, duplicates, late, dep, md, as_of_day, changes}.
APPLY = (
    """
local S, P, GONE = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', GONE) == 1 then return {1, 0, 0, 0, '', '', -1, 0} end
local tag = ARGV[1]
local keep = tonumber(ARGV[2])
local pcap = tonumber(ARGV[3])
local pmem = tonumber(ARGV[4])
local NC, RECEIVED, ACTIONS, UPDATES = $NC, $RECEIVED, $ACTIONS, $UPDATES
local meta = redis.call('HMGET', S, 'a', 'w', 'pt')
local a = tonumber(meta[1]) or -1
local w = tonumber(meta[2]) or -1
local pt = tonumber(meta[3]) or -1
local a0, w0 = a, w
local marks, newmarks, days, paircounts, people = {}, {}, {}, {}, {}

local function bucket(ds)
  local c = days[ds]
  if c == nil then
    c = {}
    local v = redis.call('HGET', S, ds)
    for j = 1, NC do c[j] = 0 end
    if v then
      for letter, num in string.gmatch(v, '(%a)(%d+)') do c[string.byte(letter) - 96] = tonumber(num) end
    end
    days[ds] = c
  end
  return c
end

local function person(f, value)
  local cur = people[f]
  if cur == nil then cur = tonumber(redis.call('HGET', P, f)) or -1 end
  if value > cur then cur = value end
  people[f] = cur
end

local applied, dups, late = 0, 0, 0
local i = 5
local n = #ARGV
while i <= n do
  local part, offs, kind, ds = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local x, y, z = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  i = i + 7
  local off = tonumber(offs)
  local f = 'o:' .. tag .. ':' .. part
  local m = marks[f]
  if m == nil then m = tonumber(redis.call('HGET', S, f)) or -1; marks[f] = m end
  if off <= m then
    dups = dups + 1
  else
    marks[f] = off
    newmarks[f] = offs
    applied = applied + 1
    local d = tonumber(ds)
    if kind == 'd' then
      local dt = tonumber(redis.call('HGET', S, 'dt')) or -1
      if tonumber(x) >= dt then
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
          local q = 'q:' .. ds .. ':' .. y
          local qc = paircounts[q]
          if qc == nil then qc = tonumber(redis.call('HGET', S, q)) or 0 end
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
  for q, qc in pairs(paircounts) do flat[#flat + 1] = q; flat[#flat + 1] = string.format('%d', qc) end
  flat[#flat + 1] = 'a'; flat[#flat + 1] = string.format('%d', a)
  flat[#flat + 1] = 'w'; flat[#flat + 1] = string.format('%d', w)
  hset_all(S, flat)
  local pf = {}
  for f, v in pairs(people) do pf[#pf + 1] = f; pf[#pf + 1] = string.format('%d', v) end
  if #pf > 0 then hset_all(P, pf) end
  redis.call('HINCRBY', S, 'v', 1)
end

if a > a0 or w > w0 then
  local lo = a - keep + 1
  local plo = w - pmem + 1
  local del = {}
  for _, f in ipairs(redis.call('HKEYS', S)) do
    local b = string.byte(f, 1)
    if b >= 48 and b <= 57 then
      if tonumber(f) < lo then del[#del + 1] = f end
    elseif b == 113 then
      local qd = tonumber(string.match(f, '^q:(%d+):'))
      if qd and qd < plo then del[#del + 1] = f end
    end
  end
  if #del > 0 then hdel_all(S, del) end
  if a > a0 then
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
end

local tail = redis.call('HMGET', S, 'dep', 'md', 'v')
return {0, applied, dups, late, tail[1] or '', tail[2] or '', a, tonumber(tail[3]) or 0}
""".replace("$NC", str(len(COUNTERS)))
    .replace("$RECEIVED", str(C["received"] + 1))
    .replace("$ACTIONS", str(C["actions"] + 1))
    .replace("$UPDATES", str(C["profile_updates"] + 1))
)

# KEYS: {emp:<id>}:s, {emp:<id>}:p, {emp:<id>}:gone; ARGV: ttl seconds.
# Marks the employee forgotten (remembering the departments still to clean) and deletes the state.
# Returns {already_forgotten, departments}.
FORGET = """
local g = redis.call('GET', KEYS[3])
if g then return {1, g} end
local t = redis.call('HMGET', KEYS[1], 'dep', 'md')
local depts = (t[1] or '') .. ',' .. (t[2] or '')
redis.call('SET', KEYS[3], depts, 'EX', ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2])
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
