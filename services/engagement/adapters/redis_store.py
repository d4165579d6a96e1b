"""The engagement state in Redis: every key, the merge script, and the reads and writes of the worker, the
publisher and the query API (docs/engagement.md, "Redis keys").

Each employee's state is one hash `{emp:<id>}` (model/state.py names its fields); an erased employee has none,
only a marker keyed by the HMAC of their id in the same slot (`services/common/pseudonyms.marker_key`), which
every write checks. Every script touches one slot, so Redis Cluster works. The worker's writes go through one
hiredis connection (`RedisBatch`): a batch is one command per touched employee plus a few set updates, all
safe to repeat.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.common.policy import load_policy
from services.common.pseudonyms import marker_key
from services.common.redis_batch import Packed, RedisBatch, pack
from services.common.redis_client import connect
from services.common.settings import CommonSettings
from services.engagement.model import spec
from services.engagement.model.state import (
    CHANGES,
    DAY_MS,
    FIXED_PREFIX,
    MARK_PREFIX,
    OLDEST,
    OPT_OUT,
    PRUNE_SLACK_DAYS,
    TOP,
    Applied,
    Op,
    State,
    decode,
    latest_field,
)

WATERMARK = "eng:wm"
DEPARTMENTS = "eng:depts"
DIRTY = "{eng:dirty}"
TAKING = "{eng:dirty}:taking"
ACTIVE = "eng:active"
ROLLED = "eng:rolled"
DEPT_DAYS_KEPT = 30  # department activity days kept (the adoption figures read 30)
DEPT_DAY_TTL = 40 * 86_400  # a safety net: day sets expire even if nobody deletes them
CHUNK = 500  # employees per read round trip
LATEST_DEPARTMENT = latest_field(spec.LATEST["department"])
MEMBER_OF = "_md"  # the department whose member set holds the employee


def _with_fields(script: str) -> str:
    """A script with the state's field names of model/state.py filled in (the one place they are named)."""
    return Template(script).substitute(
        top=TOP,
        changes=CHANGES,
        oldest=OLDEST,
        mark=MARK_PREFIX,
        opt_out=OPT_OUT,
        fixed=FIXED_PREFIX,
    )


# KEYS: the state hash, the employee's erasure marker (nothing merges once it exists). ARGV: keep_days, prune
# slack days, the last day the publisher published everyone for (-1: none; no day its figures read is dropped),
# then per source partition: partition, op count, and per op offset, kind, field, value, day
# (ascending offsets). Its statement: model/state.apply. Every field
# it needs is read in one HMGET and every change written in one HSET: a command called from a script costs
# far more than the work it does. Returns {applied, duplicates, late, refused}.
APPLY = _with_fields("""
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0, 0, 1} end
local key = KEYS[1]
local keep = tonumber(ARGV[1])
local names, index, marks = {'$top', '$changes', '$oldest'}, {}, {}
local i = 4
while i <= #ARGV do
  names[#names + 1] = '$mark' .. ARGV[i]
  marks[#marks + 1] = #names
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, n do
    local field = ARGV[i + 2]
    if not index[field] then
      names[#names + 1] = field
      index[field] = #names
    end
    i = i + 5
  end
end
local stored
if #names <= 1000 then
  stored = redis.call('HMGET', key, unpack(names))
else
  stored = {}
  for first = 1, #names, 1000 do
    local part = redis.call('HMGET', key, unpack(names, first, math.min(first + 999, #names)))
    for j = 1, #part do stored[first + j - 1] = part[j] end
  end
end
local top, changes, oldest = tonumber(stored[1] or '-1'), tonumber(stored[2] or '0'), tonumber(stored[3])
local applied, duplicates, late = 0, 0, 0
local values = {}
local part = 0
i = 4
while i <= #ARGV do
  part = part + 1
  local n = tonumber(ARGV[i + 1])
  local seen = tonumber(stored[marks[part]] or '-1')
  local mark, mark_text = seen, nil
  i = i + 2
  for _ = 1, n do
    local offset, kind, field, value = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local day = tonumber(ARGV[i + 4])
    i = i + 5
    if offset <= seen then
      duplicates = duplicates + 1
    else
      mark, mark_text = offset, ARGV[i - 5]
      if day >= 0 and day <= top - keep then
        late = late + 1
      else
        if day >= 0 then
          if day > top then top = day end
          if not oldest or day < oldest then oldest = day end
        end
        applied = applied + 1
        local old = values[field]
        if old == nil then old = stored[index[field]] end
        if kind == '+' then
          values[field] = (tonumber(old) or 0) + tonumber(value)
        elseif not old then
          values[field] = value
        else
          local old_ms, old_value = string.match(old, '^(%-?%d+)|(.*)$$')
          local new_ms, new_value = string.match(value, '^(%-?%d+)|(.*)$$')
          old_ms, new_ms = tonumber(old_ms), tonumber(new_ms)
          if new_ms > old_ms or (new_ms == old_ms and new_value > old_value) then values[field] = value end
        end
      end
    end
  end
  if mark > seen then values[names[marks[part]]] = mark_text end
end
if applied > 0 then
  values['$top'] = top
  values['$changes'] = changes + applied
  local limit = math.min(top, tonumber(ARGV[3]))
  if oldest and oldest <= limit - keep - tonumber(ARGV[2]) then
    local gone, dropped = limit - keep, {}
    oldest = nil
    for _, name in ipairs(redis.call('HKEYS', key)) do
      if string.sub(name, 1, 1) ~= '$fixed' then
        local day = tonumber(string.sub(name, 1, 3), 36)
        if day <= gone then
          dropped[#dropped + 1] = name
        elseif not oldest or day < oldest then
          oldest = day
        end
      end
    end
    for name, _ in pairs(values) do
      if string.sub(name, 1, 1) ~= '$fixed' then
        local day = tonumber(string.sub(name, 1, 3), 36)
        if day <= gone then
          values[name] = nil
        elseif not oldest or day < oldest then
          oldest = day
        end
      end
    end
    for first = 1, #dropped, 1000 do
      redis.call('HDEL', key, unpack(dropped, first, math.min(first + 999, #dropped)))
    end
  end
  if oldest then values['$oldest'] = oldest end
end
local written = {}
for name, value in pairs(values) do
  written[#written + 1] = name
  written[#written + 1] = value  -- numbers (days, counts) go out as %.14g writes them: digits
  if #written == 2000 then
    redis.call('HSET', key, unpack(written))
    written = {}
  end
end
if #written > 0 then redis.call('HSET', key, unpack(written)) end
return {applied, duplicates, late, 0}
""")

# KEYS: a number. ARGV: a number. Keeps the larger; returns the one before (-1 when there was none).
KEEP_MAX = """
local old = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > old then redis.call('SET', KEYS[1], ARGV[1]) end
return old
"""

# KEYS: dirty set, taking set. ARGV: cutoff (seconds), count. Moves the oldest marks made before the cutoff
# into the taking set; a mark made while they are published lands in the dirty set again.
TAKE = """
local taken = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2], 'WITHSCORES')
for j = 1, #taken, 2 do
  redis.call('ZADD', KEYS[2], 'NX', taken[j + 1], taken[j])
  redis.call('ZREM', KEYS[1], taken[j])
end
return taken
"""

# KEYS: state, erasure marker. ARGV: "1" opt out, "0" opt in (both kept: opting in is a choice of its own).
# Refuses (0) for an erased employee.
SET_OPT_OUT = _with_fields("""
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '$opt_out', ARGV[1])
return 1
""")


def state_key(employee: str) -> str:
    return "{emp:" + employee + "}"


GONE = "eng:gone"


def dept_members(department: str) -> str:
    return "{dept:" + department + "}:m"


def dept_newest(department: str) -> str:
    """The newest day with activity in the department: when it moves on, older day sets go."""
    return "{dept:" + department + "}:a"


def dept_day(department: str, day: int) -> str:
    return "{dept:" + department + "}:d:" + str(day)


def leaderboard(window: str, department: str | None = None) -> str:
    return f"eng:lb:{window}" if department is None else f"eng:lb:{window}:dept:{department}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Board:
    """What the publisher indexes for one employee: totals per leaderboard window."""

    employee: str
    department: str
    visible: bool  # not opted out
    totals: dict[str, float]


@dataclass(frozen=True)
class Prepared:
    """A batch's write packed for Redis (`RedisStore.prepare`): sent as it is, and again if it must be."""

    packed: Packed
    merges: int  # the replies of the merge scripts come first, one per employee
    rolled: tuple[tuple[str, int, int], ...]  # department, its newest day, the reply with the day before


# employee -> [(source partition, [(offset, op), ...] ascending)]
Writes = dict[str, list[tuple[int, list[tuple[int, Op]]]]]


class RedisStore:
    """Reads and writes of every engagement process; the worker's batch write goes through `RedisBatch`."""

    def __init__(self, client: aioredis.Redis, keep_days: int, pseudonym_key: str, marker_ttl_seconds: int) -> None:
        """`pseudonym_key` keys the erasure markers; `marker_ttl_seconds` is how long one lives (the policy's
        `retention.erasure_markers`)."""
        self.redis = client
        self.keep_days = keep_days
        self.pseudonym_key = pseudonym_key
        self.marker_ttl_seconds = marker_ttl_seconds
        self.batch = RedisBatch.like(client)
        self._published = -1  # the publisher's cursor as the last write read it (`prepare`)
        self._apply = client.register_script(APPLY)
        self._keep_max = client.register_script(KEEP_MAX)
        self._take = client.register_script(TAKE)
        self._opt_out = client.register_script(SET_OPT_OUT)

    @classmethod
    def connected(cls, settings: CommonSettings, keep_days: int) -> RedisStore:
        """The store of an engagement process: its Redis, the installation's pseudonym key and the policy's
        lifetime of erasure markers."""
        ttl = load_policy(settings.policy_file).retention.erasure_markers
        return cls(connect(settings.redis_url), keep_days, settings.pseudonym_key, int(ttl.total_seconds()))

    async def load_scripts(self) -> None:
        """Scripts are cached by the server; after a restart of Redis the first batch loads them again."""
        for script in (self._apply, self._keep_max, self._take, self._opt_out):
            script.sha = await self.redis.script_load(script.script)

    def gone(self, employee: str) -> str:
        """The employee's erasure marker: in the slot of `{emp:<id>}`, keyed by the HMAC of the id."""
        return marker_key(GONE, self.pseudonym_key, employee)

    # ------------------------------------------------------------------ the worker

    def prepare(
        self, writes: Writes, activity: dict[tuple[str, int], set[int]], newest_ms: int, now: float | None = None
    ) -> Prepared:
        """One batch's write, packed: each employee's merges (one script call each), department activity, dirty
        marks and the watermark. Pure CPU, so the worker packs a batch while Redis still executes the one
        before. The publisher's cursor (`published_day`) is the one the batch before read: an older cursor
        only keeps days a little longer."""
        keep = str(self.keep_days)
        published = self._published
        commands: list[list[str | int]] = []
        for employee, parts in writes.items():
            args: list[str | int] = [
                "EVALSHA",
                self._apply.sha,
                2,
                state_key(employee),
                self.gone(employee),
                keep,
                PRUNE_SLACK_DAYS,
                published,
            ]
            for partition, ops in parts:
                args += (partition, len(ops))
                for offset, (kind, name, value, day) in ops:
                    args += (offset, kind, name, value, day)
            commands.append(args)
        marked = time.time() if now is None else now
        if writes:
            dirty: list[str | int | float] = ["ZADD", DIRTY, "NX"]
            for employee in writes:
                dirty += (marked, employee)
            commands.append(dirty)
        newest_day: dict[str, int] = {}
        for (department, day), who in activity.items():
            commands.append(["SADD", dept_day(department, day), *who])
            commands.append(["EXPIRE", dept_day(department, day), DEPT_DAY_TTL])
            newest_day[department] = max(day, newest_day.get(department, day))
        rolled: list[tuple[str, int, int]] = []  # department, its newest day, where the reply with the one before is
        for department, day in newest_day.items():
            commands.append(["SADD", DEPARTMENTS, department])
            rolled.append((department, day, len(commands)))
            commands.append(["EVALSHA", self._keep_max.sha, 1, dept_newest(department), day])
        if newest_ms:
            commands.append(["EVALSHA", self._keep_max.sha, 1, WATERMARK, newest_ms])
        commands.append(["GET", ROLLED])  # the cursor the next batch prepares with
        return Prepared(Packed(pack(commands), len(commands)), len(writes), tuple(rolled))

    async def write(self, prepared: Prepared) -> Applied:
        """Sends a prepared batch. Every command is safe to repeat, so a failed batch is simply sent again."""
        replies = await self.batch.execute_packed(prepared.packed)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            await self.load_scripts()  # Redis restarted or was flushed: send the batch again (same script hashes)
            replies = await self.batch.execute_packed(prepared.packed)
        result = Applied()
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        for reply in replies[: prepared.merges]:
            result.applied += reply[0]
            result.duplicates += reply[1]
            result.late += reply[2]
        if replies[-1] is not None:
            self._published = max(self._published, int(replies[-1]))
        expired = [
            dept_day(department, d)
            for department, day, at in prepared.rolled
            if replies[at] >= 0
            for d in range(replies[at] - DEPT_DAYS_KEPT + 1, day - DEPT_DAYS_KEPT + 1)
        ]
        if expired:  # the day sets the department's newest day left behind
            await self.batch.execute([["DEL", *expired]])
        return result

    async def apply(
        self, writes: Writes, activity: dict[tuple[str, int], set[int]], newest_ms: int, now: float | None = None
    ) -> Applied:
        """`prepare` and `write` in one, with the publisher's cursor read first."""
        self._published = await self.published_day()
        return await self.write(self.prepare(writes, activity, newest_ms, now))

    async def sync_memberships(self, employees: Sequence[str]) -> None:
        """Department member sets follow each employee's newest department (from the directory's events):
        `md` in the state says which set holds the employee now. Idempotent, so a replay repeats it harmlessly."""
        pipe = self.redis.pipeline(transaction=False)
        for employee in employees:
            pipe.hmget(state_key(employee), [LATEST_DEPARTMENT, MEMBER_OF])
        replies = await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for employee, (latest, member_of) in zip(employees, replies, strict=True):
            if latest is None:  # no state: never registered, or erased
                continue
            department = _text(latest).partition("|")[2]
            old = _text(member_of) if member_of is not None else ""
            if department == old:
                continue
            if old:
                pipe.srem(dept_members(old), employee)
            if department:
                pipe.sadd(dept_members(department), employee)
                pipe.sadd(DEPARTMENTS, department)
            pipe.hset(state_key(employee), MEMBER_OF, department)
        await pipe.execute()

    async def forget(self, employee: str, windows: Sequence[str]) -> None:
        """Erases the employee's state, their board entries and memberships, and marks them gone so a replay
        of their events never writes them again: what stays is the keyed marker the merge script refuses (it
        names nobody), until the raw events it could come from have expired."""
        state = await self.read_state(employee)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(state_key(employee))
        pipe.set(self.gone(employee), "1", ex=self.marker_ttl_seconds)
        for window in windows:
            pipe.zrem(leaderboard(window), employee)
            if state is not None and state.department:
                pipe.zrem(leaderboard(window, state.department), employee)
        if state is not None and state.department:
            pipe.srem(dept_members(state.department), employee)
        pipe.zrem(DIRTY, employee)
        pipe.zrem(TAKING, employee)
        pipe.zrem(ACTIVE, employee)
        await pipe.execute()

    # ------------------------------------------------------------------ reads

    async def watermark(self) -> int:
        value = await self.redis.get(WATERMARK)
        return int(value) if value else 0

    async def read_states(self, employees: Sequence[str]) -> dict[str, State | None]:
        """States by employee; None for unknown or forgotten ones."""
        out: dict[str, State | None] = {}
        for start in range(0, len(employees), CHUNK):
            chunk = employees[start : start + CHUNK]
            pipe = self.redis.pipeline(transaction=False)
            for employee in chunk:
                pipe.hgetall(state_key(employee))
            for employee, fields in zip(chunk, await pipe.execute(), strict=True):
                out[employee] = decode(fields) if fields else None
        return out

    async def forgotten(self, employees: Sequence[str]) -> set[str]:
        """Those without state any more (erased): what the publisher checks after a chunk went out."""
        out: set[str] = set()
        for start in range(0, len(employees), CHUNK):
            chunk = employees[start : start + CHUNK]
            pipe = self.redis.pipeline(transaction=False)
            for employee in chunk:
                pipe.exists(state_key(employee))
            out.update(e for e, n in zip(chunk, await pipe.execute(), strict=True) if not n)
        return out

    async def read_state(self, employee: str) -> State | None:
        return (await self.read_states([employee]))[employee]

    async def raw_fields(self, employee: str) -> dict[str, str]:
        """The stored hash as text (tests and the contract suite compare it with model/state.apply)."""
        return {_text(k): _text(v) for k, v in (await self.redis.hgetall(state_key(employee))).items()}

    # ------------------------------------------------------------------ the publisher

    async def take_dirty(self, count: int, cutoff: float) -> list[str]:
        """A chunk to publish: what an earlier round took and did not finish, else the oldest marks."""
        left = await self.redis.zrange(TAKING, 0, count - 1)
        if left:
            return [_text(e) for e in left]
        taken = await self._take(keys=[DIRTY, TAKING], args=[cutoff, count])
        return [_text(taken[j]) for j in range(0, len(taken), 2)]

    async def published(
        self, employees: Sequence[str], boards: Sequence[Board], tops: dict[str, int], sizes: tuple[int, int]
    ) -> None:
        """After the broker acknowledged: leaderboard entries (trimmed to their top), the active index for the
        day rollover, and the chunk leaves the taking set."""
        size, department_size = sizes
        pipe = self.redis.pipeline(transaction=False)
        trimmed: set[tuple[str, int]] = set()
        for board in boards:
            for window, total in board.totals.items():
                keys = [(leaderboard(window), size)]
                if board.department:
                    keys.append((leaderboard(window, board.department), department_size))
                for key, keep in keys:
                    if board.visible:
                        pipe.zadd(key, {board.employee: total})
                        trimmed.add((key, keep))
                    else:
                        pipe.zrem(key, board.employee)
        for key, keep in trimmed:
            pipe.zremrangebyrank(key, 0, -keep - 1)
        if tops:
            pipe.zadd(ACTIVE, dict(tops), gt=True)
        if employees:
            pipe.zrem(TAKING, *employees)
        await pipe.execute()

    async def drop_leaderboards(self, keep: Sequence[str] = ()) -> None:
        """Deletes every leaderboard of a window not in `keep` (a policy without rankings keeps none; a window
        the scoring file no longer ranks loses its boards)."""
        pipe = self.redis.pipeline(transaction=False)
        async for key in self.redis.scan_iter(match=leaderboard("*"), count=1000):
            if _text(key).split(":")[2] not in keep:
                pipe.delete(key)  # one key per command: boards live in different cluster slots
        await pipe.execute()

    async def published_day(self) -> int:
        """The last day whose figures went out for everyone active (-1: none yet): the publisher's cursor in
        event time, and how far back the worker keeps days (`APPLY`)."""
        day = await self.redis.get(ROLLED)
        return -1 if day is None else int(day)

    async def set_published_day(self, day: int) -> None:
        await self._keep_max(keys=[ROLLED], args=[day])

    async def marked(self) -> list[str]:
        """Every employee whose ScoreChanged is due (marked or being published)."""
        dirty = await self.redis.zrange(DIRTY, 0, -1)
        taking = await self.redis.zrange(TAKING, 0, -1)
        return sorted({_text(e) for e in (*dirty, *taking)})

    async def caught_up(self) -> bool:
        """The publisher has published every day up to the watermark's and nothing is marked: every ScoreChanged
        due for what the worker applied is on the topic (what waits for a whole import to be scored reads)."""
        watermark, cursor = await self.redis.get(WATERMARK), await self.redis.get(ROLLED)
        marked = await self.redis.zcard(DIRTY) + await self.redis.zcard(TAKING)
        return watermark is not None and cursor is not None and int(cursor) >= int(watermark) // DAY_MS and not marked

    async def rollover(self, day: int) -> int:
        """Marks dirty everyone active within the longest window up to `day`, whose windowed figures move with
        the day. Returns how many were marked."""
        employees = await self.redis.zrange(ACTIVE, day - self.keep_days + 1, "+inf", byscore=True)
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(employees), CHUNK):
            pipe.zadd(DIRTY, {_text(e): now for e in employees[start : start + CHUNK]}, nx=True)
        await pipe.execute()
        return len(employees)

    # ------------------------------------------------------------------ the query API

    async def board(self, window: str, department: str, offset: int, count: int) -> list[tuple[str, float]]:
        """Raw leaderboard rows (best first) from position `offset`."""
        rows = await self.redis.zrevrange(
            leaderboard(window, department or None), offset, offset + count - 1, withscores=True
        )
        return [(_text(member), float(score)) for member, score in rows]

    async def board_size(self, window: str, department: str) -> int:
        return int(await self.redis.zcard(leaderboard(window, department or None)))

    async def departments(self) -> list[str]:
        return sorted(_text(d) for d in await self.redis.smembers(DEPARTMENTS))

    async def members(self, department: str) -> list[str]:
        return sorted(_text(m) for m in await self.redis.smembers(dept_members(department)))

    async def department_sizes(self, departments: Sequence[str]) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for department in departments:
            pipe.scard(dept_members(department))
        return {d: int(n) for d, n in zip(departments, await pipe.execute(), strict=True)}

    async def department_activity(self, department: str, first: int, last: int) -> set[int]:
        """Pseudonyms of members with own activity between two days (inclusive)."""
        keys = [dept_day(department, d) for d in range(first, last + 1)]
        return {int(x) for x in await self.redis.sunion(keys)}

    async def set_opt_out(self, employee: str, opt_out: bool) -> bool:
        """Writes the preference and marks the employee for re-publishing; False when forgotten."""
        written = await self._opt_out(keys=[state_key(employee), self.gone(employee)], args=["1" if opt_out else "0"])
        if written:
            await self.redis.zadd(DIRTY, {employee: time.time()}, nx=True)
        return bool(written)
