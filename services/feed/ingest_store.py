"""Redis side of IngestInteractions: one batch is two Lua scripts, with no WATCH.

Concurrent batches of one source used to WATCH the same "already ingested" set and abort each other. Now
a read script returns which source ids are known and the directory departments the envelopes need; the
pure rules build the envelopes; then a commit script, atomically, checks those departments are unchanged
and, entry by entry, adds the source id to the set and the envelope to the outbox only if the id is new.
Two batches carrying the same id never conflict: the commit that runs first takes it, the other counts it
as a duplicate. A directory change between the two scripts makes the commit write nothing, and the batch
is built again (like an aborted transaction).

Arguments travel as length-prefixed blobs (4-byte big-endian length, then the bytes; Lua's struct
format 'I4c0'), not as one Redis argument each: redis-py packs every argument in Python, and the ~3,000
arguments of a 500-entry batch cost as much CPU as the rest of the ingest path. So the scripts build the
employee and outbox key names from ids and the prefixes in `Keys`; like every feed write, they need a
single Redis primary (docs/feed.md).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2

from services.common.errors import Unavailable
from services.feed.events import outbox_partition
from services.feed.store import Keys

_FIELDS = """
local function fields(blob)
  local out, pos = {}, 1
  while pos <= #blob do
    out[#out + 1], pos = struct.unpack('>I4c0', blob, pos)
  end
  return out
end
"""

# KEYS[1] the source's ingested set. ARGV[1] source ids, ARGV[2] employee ids (blobs), ARGV[3] and ARGV[4]
# the employee key's prefix and suffix. Returns '1' or '0' per source id (known or not) and a blob with the
# department of each employee ('' = not in the directory).
_VIEW = (
    _FIELDS
    + """
local flags, departments = {}, {}
for i, source_id in ipairs(fields(ARGV[1])) do flags[i] = redis.call('SISMEMBER', KEYS[1], source_id) end
for i, emp in ipairs(fields(ARGV[2])) do
  local department = redis.call('HGET', ARGV[3] .. emp .. ARGV[4], 'department_id') or ''
  departments[i] = struct.pack('>I4', #department) .. department
end
return {table.concat(flags), table.concat(departments)}
"""
)

# KEYS[1] the ingested set. ARGV[1] (employee id, department the envelopes were built with) pairs,
# ARGV[2] six fields per entry: source id, outbox partition, record key, event id, type, value (blobs);
# ARGV[3], ARGV[4] the employee key's prefix and suffix, ARGV[5] the outbox key prefix.
# All or nothing: -1 and no write if a department changed; else each entry whose source id is new joins
# the set and its envelope the outbox, in order; returns how many were new.
_COMMIT = (
    _FIELDS
    + """
local used = fields(ARGV[1])
for i = 1, #used, 2 do
  if (redis.call('HGET', ARGV[3] .. used[i] .. ARGV[4], 'department_id') or '') ~= used[i + 1] then return -1 end
end
local e, accepted = fields(ARGV[2]), 0
for i = 1, #e, 6 do
  if redis.call('SADD', KEYS[1], e[i]) == 1 then
    redis.call('XADD', ARGV[5] .. e[i + 1], '*', 'key', e[i + 2], 'id', e[i + 3], 'type', e[i + 4], 'value', e[i + 5])
    accepted = accepted + 1
  end
end
return accepted
"""
)

_LENGTH = struct.Struct(">I")


def pack(values: Iterable[str | bytes]) -> bytes:
    """Length-prefixed concatenation, the format the scripts read with struct 'I4c0'."""
    parts = []
    for value in values:
        data = value.encode() if isinstance(value, str) else value
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def unpack(blob: bytes) -> list[bytes]:
    values, pos = [], 0
    while pos < len(blob):
        (size,) = _LENGTH.unpack_from(blob, pos)
        pos += 4
        values.append(blob[pos : pos + size])
        pos += size
    return values


@dataclass(frozen=True)
class IngestView:
    """What an ingestion batch depends on: which source ids are known, and directory departments."""

    seen: frozenset[str]
    departments: Mapping[str, str]  # employee id -> department; absent = not in the directory


Build = Callable[[IngestView], Sequence[tuple[str, envelope_pb2.Envelope]]]


class IngestStore:
    """Takes ingestion batches: read script, pure build, commit script (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, partitions: int, max_retries: int) -> None:
        self._partitions = partitions
        self._max_retries = max_retries
        self._view = redis.register_script(_VIEW)
        self._commit = redis.register_script(_COMMIT)
        self._employee_key = Keys.employee_key_parts()

    async def ingest(self, source: str, source_ids: Sequence[str], employees: Collection[str], build: Build) -> int:
        """Ingests one batch atomically; returns how many of `source_ids` were new.

        `build` (pure, may raise) turns the view into (source id, envelope) pairs for the ids it holds new;
        it runs again if the directory changed before the commit (at most `max_retries` times)."""
        seen_key = Keys.ingested(source)
        people = sorted(employees)
        ids_blob, people_blob = pack(source_ids), pack(people)
        for _ in range(self._max_retries):
            flags, departments_blob = await self._view(
                keys=[seen_key], args=[ids_blob, people_blob, *self._employee_key]
            )
            departments = unpack(departments_blob)
            view = IngestView(
                seen=frozenset(sid for sid, flag in zip(source_ids, flags, strict=True) if flag == ord("1")),
                departments={e: d.decode() for e, d in zip(people, departments, strict=True) if d},
            )
            entries = build(view)
            if not entries:
                return 0
            used = pack(x for pair in zip(people, departments, strict=True) for x in pair)
            accepted = await self._commit(
                keys=[seen_key], args=[used, self._entries(entries), *self._employee_key, Keys.OUTBOX_PREFIX]
            )
            if accepted >= 0:
                return accepted
        raise Unavailable("the directory is changing quickly right now; please retry the batch in a moment")

    def _entries(self, entries: Sequence[tuple[str, envelope_pb2.Envelope]]) -> bytes:
        return pack(
            field
            for source_id, env in entries
            for field in (
                source_id,
                str(outbox_partition(env.employee_id, self._partitions)),
                env.employee_id,
                env.event_id,
                env.type,
                env.SerializeToString(),
            )
        )
