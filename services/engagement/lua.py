"""Lua scripts of the engagement store. Each touches the keys of exactly one hash tag (Redis Cluster ready)."""

from __future__ import annotations

# A slice field is `<topic tag>:<partition>:<owner token>` (docs/decisions/0009); a field without a token (the
# layout before tokens) counts as token 0. Returns the field's partition key `<tag>:<partition>` and its token.
_OWNER = """
local function owner(name)
  local tag, partition, token = string.match(name, '^(%x+):(%d+):?(%d*)$')
  if not tag then return nil, 0 end
  return tag .. ':' .. partition, tonumber(token) or 0
end
"""

# KEYS: {emp:<id>}:s, {emp:<id>}:gone; ARGV: pairs of the writer's own slice field and the new slice.
# The write of a slice not yet in the writer's own field (its first write since the writer claimed the partition):
# refused for a forgotten employee (-1, nothing written); a slice whose partition has a field of a newer owner is
# not written (that owner has its events); otherwise the slice is written and fields of older owners of its
# partition are deleted. Returns 0 when every slice was written (as a plain HSET of existing fields does, so the
# writer checks a batch's replies at once), -1, or per pair 1 (written) / 0 (a newer owner holds it).
CREATE_SLICES = (
    _OWNER
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local names = redis.call('HKEYS', KEYS[1])
local out = {}
local fenced = false
for i = 1, #ARGV, 2 do
  local part, token = owner(ARGV[i])
  local newer = false
  local older = {}
  for _, name in ipairs(names) do
    local p, t = owner(name)
    if p == part then
      if t > token then newer = true elseif t < token then older[#older + 1] = name end
    end
  end
  if newer then
    out[#out + 1] = 0
    fenced = true
  else
    if #older > 0 then redis.call('HDEL', KEYS[1], unpack(older)) end
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    out[#out + 1] = 1
  end
end
if fenced then return out end
return 0
"""
)

# KEYS: {emp:<id>}:s, {emp:<id>}:gone; ARGV: the own fields a plain HSET wrote, when it created some (it meant to
# update them): they had been deleted since the writer last wrote them, by FORGET or by a newer owner of their
# partition. Undoes what must not stay: everything of a forgotten employee (-1), or each field a newer owner
# holds (0 for it; 1 for a field that stays).
REPAIR = (
    _OWNER
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  return -1
end
local names = redis.call('HKEYS', KEYS[1])
local out = {}
for i = 1, #ARGV do
  local part, token = owner(ARGV[i])
  local keep = 1
  for _, name in ipairs(names) do
    local p, t = owner(name)
    if p == part and t > token then keep = 0 end
  end
  if keep == 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
  out[#out + 1] = keep
end
return out
"""
)

# KEYS: {emp:<id>}:s, {emp:<id>}:gone; ARGV: ttl seconds, the department to clean.
# Marks the employee forgotten (remembering the department still to clean) and deletes the state.
# Returns {already_forgotten, departments}.
FORGET = """
local g = redis.call('GET', KEYS[2])
if g then return {1, g} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
redis.call('DEL', KEYS[1])
return {0, ARGV[2]}
"""

# KEYS: one string holding an integer; ARGV: candidate. Keeps the maximum; returns the previous value.
MAX = """
local cur = redis.call('GET', KEYS[1])
if cur == false or tonumber(ARGV[1]) > tonumber(cur) then redis.call('SET', KEYS[1], ARGV[1]) end
return cur
"""

# KEYS: a dirty ZSET, its taking ZSET (one hash tag); ARGV: how many. The emitter's next chunk: what it took
# before and has not published yet (a retry, a restart), else the oldest marks, moved from the dirty set to the
# taking set. A change marked while a chunk is being published lands in the dirty set again (the writers add
# with NX, which only adds), so it is published in a later chunk and never lost. Returns member, score pairs.
TAKE_DIRTY = """
local held = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
if #held > 0 then return held end
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
if #popped > 0 then
  local args = {}
  for i = 1, #popped, 2 do
    args[#args + 1] = popped[i + 1]
    args[#args + 1] = popped[i]
  end
  redis.call('ZADD', KEYS[2], unpack(args))
end
return popped
"""
