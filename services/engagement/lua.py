"""Lua scripts of the engagement store. Each touches the keys of exactly one hash tag (Redis Cluster ready)."""

from __future__ import annotations

# KEYS: {emp:<id>}:s, {emp:<id>}:gone; ARGV: triples of slice field, the mark the writer read (the slice's first
# 8 bytes; empty for a new slice), the new slice. Returns -1 (and writes nothing) for a forgotten employee, 1 when
# every slice was written, else per triple 1 (written) or 0 (someone wrote the slice since it was read: a worker
# holding a stale copy after a rebalance never overwrites newer state). The plain 1 lets the writer check a whole
# batch's replies at once.
# The forgotten marker is looked at only before a slice is created: FORGET deletes every slice as it sets the
# marker, so a slice that exists (the compare-and-set matched a mark) proves the employee is not forgotten, and a
# stale mark of a forgotten employee loses the compare-and-set. In the steady state nearly every write updates a
# slice, and the EXISTS cost Redis ~1 µs per event.
WRITE_SLICES = """
local out = {}
local all = 1
local checked = false
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local mark = ''
  if cur then mark = string.sub(cur, 1, 8) end
  if mark == ARGV[i + 1] then
    if mark == '' and not checked then
      if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
      checked = true
    end
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
    all = 0
  end
end
if all == 1 then return 1 end
return out
"""

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
