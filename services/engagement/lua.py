"""Lua scripts of the engagement store. Each touches the keys of exactly one hash tag (Redis Cluster ready)."""

from __future__ import annotations

# KEYS: {emp:<id>}:s, {emp:<id>}:gone; ARGV: pairs of a slice field of the writer's own (`<topic tag>:<partition>:
# <owner token>`, docs/decisions/0009) and either the slice to write or nothing (a plain HSET wrote it already). Writes
# the slices, then settles each partition they belong to: of its fields, the one with the highest mark (the offset of
# its newest event, its first 8 bytes big-endian: the most of the partition's events; on a tie the higher token: the
# same events) stays and the others go. No script ever deletes the field with a partition's highest mark, so what
# readers see never steps back, whoever writes and in whatever order tokens were claimed. The first write of a slice
# under a new token comes here; so does a plain HSET that created a field it meant to update (an erasure or another
# writer deleted it since). A forgotten employee's state is deleted again and nothing is written (-1). Returns 0 when
# every given slice is its partition's (as a plain HSET of existing fields does, so the writer checks a batch's replies
# at once), -1, or per pair 1 (it stays) / 0 (another field has more of the partition's events; this one is gone). A
# field without a token (the layout before tokens) counts as token 0.
SETTLE_SLICES = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  return -1
end
local function owner(name)
  local tag, partition, token = string.match(name, '^(%x+):(%d+):?(%d*)$')
  if not tag then return nil, 0 end
  return tag .. ':' .. partition, tonumber(token) or 0
end
local function mark(name)
  local value = redis.call('HGET', KEYS[1], name)
  if not value or #value < 8 then return -1 end
  local m = 0
  for i = 1, 8 do m = m * 256 + string.byte(value, i) end
  return m
end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
local names = redis.call('HKEYS', KEYS[1])
local out = {}
local all = true
for i = 1, #ARGV, 2 do
  local part, token = owner(ARGV[i])
  local mine = mark(ARGV[i])
  local best = true
  local worse = {}
  for _, name in ipairs(names) do
    local p, t = owner(name)
    if p == part and name ~= ARGV[i] then
      local theirs = mark(name)
      if theirs > mine or (theirs == mine and t > token) then best = false else worse[#worse + 1] = name end
    end
  end
  if best then
    if #worse > 0 then redis.call('HDEL', KEYS[1], unpack(worse)) end
    out[#out + 1] = 1
  else
    redis.call('HDEL', KEYS[1], ARGV[i])
    out[#out + 1] = 0
    all = false
  end
end
if all then return 0 end
return out
"""

# KEYS: {emp:<id>}:s, {emp:<id>}:gone; ARGV: ttl seconds, the department to clean.
# Marks the employee forgotten (remembering the department still to clean) and deletes the state.
# Returns {already_forgotten, departments}.
FORGET = """
local g = redis.call('GET', KEYS[2])
if g then
  redis.call('DEL', KEYS[1])
  return {1, g}
end
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

# KEYS: a dirty ZSET, its taking ZSET (one hash tag); ARGV: how many, the latest mark to take. The emitter's next
# chunk: what it took before and has not published yet (a retry, a restart), else the oldest marks made up to
# ARGV[2], moved from the dirty set to the taking set. A change marked while a chunk is being published lands in
# the dirty set again (the writers add with NX, which only adds), so it is published in a later chunk or round
# and never lost. Returns member, score pairs.
TAKE_DIRTY = """
local held = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
if #held > 0 then return held end
local taken = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]), 'WITHSCORES')
if #taken > 0 then
  local members, args = {}, {}
  for i = 1, #taken, 2 do
    members[#members + 1] = taken[i]
    args[#args + 1] = taken[i + 1]
    args[#args + 1] = taken[i]
  end
  redis.call('ZREM', KEYS[1], unpack(members))
  redis.call('ZADD', KEYS[2], unpack(args))
end
return taken
"""

# KEYS: a taking ZSET; ARGV: member, score pairs as taken. Removes a published member only if it is still the mark
# that was taken: at a rebalance two emitters may work on one bucket for a moment, and a stale one must not clear
# a newer mark the other took since.
UNTAKE = """
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
