"""Redis adapter of the engagement processor: batched, idempotent writes and state reads (docs/engagement.md)."""

from __future__ import annotations

import itertools
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from services.common.redis_batch import Arg, Command, RedisBatch, bulk, command
from services.engagement import lua, partial
from services.engagement.config import ScoringConfig
from services.engagement.scoring import EmployeeState, Op

DEPT_DAYS = 30  # department activity day sets kept (the longest adoption figure is 30 days)
DEPT_DAY_TTL = 40 * 86_400  # wall-clock safety net for day sets a restarted worker could recreate
WATERMARK = "eng:wm"
DEPARTMENTS = "eng:depts"
SEND_EVERY = 50  # employees per part of a batch's write: Redis works on a part while the next is computed
OPT_OUT = b"oo"  # field of the state hash the query server writes (ranking opt-out)
Group = dict[str, dict[int, list[tuple[int, Op]]]]  # employee -> source partition -> (offset, op), in order
# see EngagementStore._entry; tuples of non-container values only, so the cyclic collector stops scanning them
Entry = tuple[tuple[partial.Slice, ...], bytes, bytes, int, bytes]
ZADD, NX = bulk(b"ZADD"), bulk(b"NX")


def state_key(employee_id: str) -> str:
    """One hash per employee: a slice per source partition (`<topic tag>:<partition>:<owner token>`) and `oo`."""
    return f"{{emp:{employee_id}}}:s"


def owner_key(tag: str, partition: int) -> str:
    """The counter a worker claims its owner token of a partition from (docs/decisions/0009)."""
    return f"eng:owner:{tag}:{partition}"


def slice_field(name: bytes) -> tuple[bytes, int, int] | None:
    """(topic tag, partition, owner token) of a slice field; None for other fields. A field without a token
    (the layout before decision 0009) counts as token 0."""
    parts = name.split(b":")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts[1:]):
        return None
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 0


def newest_slices(fields: Mapping[bytes, bytes]) -> dict[tuple[bytes, int], tuple[int, bytes]]:
    """(owner token, slice) of each (topic tag, partition): the field with the highest mark, i.e. the most of
    the partition's events (the mark leads a slice, big-endian, so bytes compare as numbers; on a tie the higher
    token, the same events). Another writer's field (a zombie's, or one SETTLE_SLICES has not removed yet)
    holds an earlier state of the same events."""
    out: dict[tuple[bytes, int], tuple[int, bytes]] = {}
    for name, value in fields.items():
        parsed = slice_field(name)
        if parsed is not None:
            tag, partition, token = parsed
            held = out.get((tag, partition))
            if held is None or (value[:8], token) > (held[1][:8], held[0]):
                out[(tag, partition)] = (token, value)
    return out


def gone_key(employee_id: str) -> str:
    """Present while a forgotten employee's erasure is remembered: nothing may write their state again."""
    return f"{{emp:{employee_id}}}:gone"


def dept_members(department: str) -> str:
    """The department's employee ids (the query server ranks and counts departments from it)."""
    return f"{{dept:{department}}}:m"


def dept_day(department: str, day: int) -> str:
    return f"{{dept:{department}}}:d:{day}"


def dept_newest(department: str) -> str:
    return f"{{dept:{department}}}:a"


def leaderboard(window: str, department: str | None = None) -> str:
    return f"eng:lb:{window}" if department is None else f"eng:lb:{window}:dept:{department}"


def active_index(bucket: int) -> str:
    return f"eng:active:{bucket}"


def dirty_set(bucket: int) -> str:
    """Employees of the bucket whose ScoreChanged is due, scored by when first marked (writers add with NX: a
    mark already there keeps its place, and adding costs Redis a third of an update)."""
    return f"{{eng:dirty:{bucket}}}"


def taking_set(bucket: int) -> str:
    """The chunk the emitter is publishing (lua.TAKE_DIRTY): removed once published."""
    return f"{{eng:dirty:{bucket}}}:taking"


def rolled_key(bucket: int) -> str:
    return f"eng:rolled:{bucket}"


def home_bucket(employee_id: str, buckets: int) -> int:
    """The bucket (= source partition number) whose worker publishes this employee's figures."""
    return zlib.crc32(employee_id.encode()) % buckets


def topic_tag(topic: str) -> str:
    return format(zlib.crc32(topic.encode()) & 0xFFFF, "04x")


@dataclass
class BatchResult:
    duplicates: int = 0
    late: int = 0
    superseded: int = 0  # employees whose write was refused or undone (another field has more events; erasure)
    slices: int = 0  # slices written


def _s(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def state_reads(employees: Iterable[str]) -> list[Command]:
    """Per employee their state hash and whether they are forgotten: a worker holding a forgotten employee in
    memory may write them back for a moment before SETTLE_SLICES deletes that again, so no reader trusts the
    hash alone. `state_hashes` reads the replies."""
    commands: list[Command] = []
    for employee in employees:
        commands += [("HGETALL", state_key(employee)), ("EXISTS", gone_key(employee))]
    return commands


def state_hashes(replies: Sequence[object]) -> list[dict[bytes, bytes] | None]:
    """The replies of `state_reads`: each employee's state hash, None for a forgotten one."""
    out: list[dict[bytes, bytes] | None] = []
    for flat, gone in zip(replies[::2], replies[1::2], strict=True):
        for reply in (flat, gone):
            if isinstance(reply, ResponseError):
                raise reply
        out.append(None if gone else dict(zip(flat[::2], flat[1::2], strict=True)))  # type: ignore[index]
    return out


def employee_from_hash(fields: Mapping[bytes, bytes]) -> EmployeeState | None:
    """Merges the slices of one employee's state hash; None when no event was ever applied (or forgotten)."""
    parts = [partial.decode(value) for _, value in newest_slices(fields).values()]
    if not parts:
        return None
    return partial.merge(parts, fields.get(OPT_OUT) == b"1")


class EngagementStore:
    """All Redis I/O of the worker. Per batch: one read of the slices not yet in memory and one write round
    trip. Slices it wrote stay in memory (bounded). Each partition's slices are written under the owner token the
    worker claimed for it, so a plain HSET cannot overwrite another writer's state (docs/decisions/0009)."""

    def __init__(
        self,
        client: aioredis.Redis,
        cfg: ScoringConfig,
        topic: str,
        buckets: int,
        forgotten_ttl_seconds: int,
        cache_slices: int = 200_000,
    ) -> None:
        self.redis = client
        self.cfg = cfg
        self.tag = topic_tag(topic)
        self.buckets = buckets
        self.forgotten_ttl = forgotten_ttl_seconds
        self.rules = partial.rules(cfg)
        self.batch = RedisBatch.like(client)
        self.reads = RedisBatch.like(client)  # the emitter's, so it never waits for a batch being written
        self._shas: tuple[str, str] | None = None
        self._forget = client.register_script(lua.FORGET)
        self._settle_slices = client.register_script(lua.SETTLE_SLICES)  # rare: off the hot path
        self._max = client.register_script(lua.MAX)  # via redis-py, off the hot path
        self._take = client.register_script(lua.TAKE_DIRTY)
        self._untake = client.register_script(lua.UNTAKE)
        self._dept_newest: dict[str, int] = {}
        # employee -> their entry (slices of every source partition, read at once), at most cache_slices in all
        self._cache: dict[str, Entry] = {}
        self._cache_max = max(1, cache_slices // max(1, buckets))
        self._tokens: dict[int, int] = {}  # partition -> the owner token claimed for it
        self._assigned: set[int] | None = None  # partitions the group assigned; None: not run by a consumer
        self._fields: list[bytes | None] = []  # partition -> its own slice field while claimed

    def _entry(self, employee: str, slices: tuple[partial.Slice, ...], settle_sha: str) -> Entry:
        """All the write path needs of an employee, kept together so that a batch looks each employee up
        once (a lookup in a dict of every employee costs ~0.5 µs here, memory-bound): their slices by source
        partition, `HSET <state key>` and `EVALSHA <settle> 2 <state key> <gone key>` packed without their
        array headers (`_slice.write` completes the one it uses), the home bucket, the id as a RESP argument."""
        key = state_key(employee)
        update = hiredis.pack_command(("HSET", key))
        settle = hiredis.pack_command(("EVALSHA", settle_sha, 2, key, gone_key(employee)))
        return (
            slices,
            update[update.index(b"\n") + 1 :],
            settle[settle.index(b"\n") + 1 :],
            home_bucket(employee, self.buckets),
            bulk(employee.encode()),
        )

    async def _own(self, groups: Group) -> Group:
        """The part of the batch this worker may write, with an owner token for each of its partitions.

        A token is claimed at the first write after an assignment: a number no earlier owner had, so the slices
        written under it are this worker's alone (slices held in memory name the owners of before: every
        employee is read again). Ops of a partition revoked since the batch was fetched are left out: its new
        owner replays them (the consumer does not mark them done), and writing them would only race it."""
        present = set(itertools.chain.from_iterable(groups.values()))
        allowed = self._assigned
        if allowed is not None and not present <= allowed:
            present &= allowed
            kept = ((e, {p: ops for p, ops in parts.items() if p in allowed}) for e, parts in groups.items())
            groups = {employee: parts for employee, parts in kept if parts}
        tokens = self._tokens
        new = sorted(p for p in present if p not in tokens)
        if not new:
            return groups
        pipe = self.redis.pipeline(transaction=False)
        for partition in new:
            pipe.incr(owner_key(self.tag, partition))
        for partition, token in zip(new, await pipe.execute(), strict=True):
            tokens[partition] = int(token)
        self._fields = [
            f"{self.tag}:{p}:{tokens[p]}".encode() if p in tokens else None
            for p in range(max(self.buckets, max(tokens) + 1))
        ]
        self._cache.clear()
        return groups

    def assign(self, partitions: Iterable[int]) -> None:
        """The group assigned these partitions: from now on only assigned partitions are written, and each under
        a token claimed anew (another worker may have owned it meanwhile). A store nobody assigns partitions to
        (tests, tools) writes every partition it is given."""
        partitions = list(partitions)
        self._assigned = (self._assigned or set()) | set(partitions)
        self._drop_tokens(partitions)

    def release(self, partitions: Iterable[int]) -> None:
        """The partitions were revoked: nothing more is written for them until they are assigned again."""
        partitions = list(partitions)
        if self._assigned is not None:
            self._assigned -= set(partitions)
        self._drop_tokens(partitions)

    def _drop_tokens(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._tokens.pop(partition, None)
            if partition < len(self._fields):
                self._fields[partition] = None

    async def _scripts(self) -> tuple[str, str]:
        """SHA1s of the settle and max scripts, loaded once (and again after a Redis restart lost them)."""
        if self._shas is None:
            settle = await self.redis.script_load(lua.SETTLE_SLICES)
            high = await self.redis.script_load(lua.MAX)
            self._shas = (settle, high)
        return self._shas

    async def _entries(self, groups: Group, settle_sha: str) -> list[Entry]:
        """The entry of every employee of the batch, in its order; the ones not held in memory are read: one
        HGETALL per employee, one round trip."""
        cache = self._cache
        if len(cache) > self._cache_max:  # the oldest tenth goes (insertion order)
            for key in list(cache)[: len(cache) - self._cache_max + self._cache_max // 10]:
                del cache[key]
        entries = [cache.get(employee) for employee in groups]
        missing = [employee for employee, entry in zip(groups, entries, strict=True) if entry is None]
        if not missing:
            return cast(list[Entry], entries)
        hashes = state_hashes(await self.batch.execute(state_reads(missing)))
        decode, empty, tag, tokens = partial.decode, partial.Slice, self.tag.encode(), self._tokens
        for employee, fields in zip(missing, hashes, strict=True):
            slices = [empty() for _ in self._fields]
            # a forgotten employee's leftover (a write back that was not settled) is not theirs to update: the
            # next write goes through SETTLE_SLICES, which deletes it again
            held = {} if fields is None else newest_slices(fields)
            for (of_topic, partition), (token, blob) in held.items():
                if of_topic == tag and partition < len(slices):
                    slices[partition] = decode(blob)
                    slices[partition].owned = token == tokens.get(partition)
            cache[employee] = self._entry(employee, tuple(slices), settle_sha)
        return [cache[employee] if entry is None else entry for employee, entry in zip(groups, entries, strict=True)]

    async def apply(
        self, ops: Group, activity: Mapping[tuple[str, int], Iterable[int]], watermark_ms: int
    ) -> BatchResult:
        """Applies one batch: new slices, department activity, dirty marks, the watermark."""
        result = BatchResult()
        try:
            await self._write_slices(ops, result, activity, watermark_ms)
        except BaseException:
            for employee in ops:  # memory may be ahead of Redis now: re-read on retry
                self._cache.pop(employee, None)
            raise
        return result

    async def _write_slices(
        self, groups: Group, result: BatchResult, activity: Mapping[tuple[str, int], Iterable[int]], watermark_ms: int
    ) -> None:
        """One read and one write round trip."""
        settle_sha, max_sha = await self._scripts()
        groups = await self._own(groups)
        entries = await self._entries(groups, settle_sha)
        written: list[tuple[str, list[int]]] = []  # (employee, partitions written), as the writes were sent
        commands: list[Command] = []  # what follows the writes
        moved: list[tuple[str, str, str]] = []  # (employee, department before, after)
        dirty: dict[int, list[bytes]] = {}
        now = bulk(repr(time.time()).encode())
        fields = self._fields
        rules = self.rules
        write = partial.write
        items = list(groups.items())
        duplicates = late = 0
        async with self.batch.stream() as out:
            for start in range(0, len(items), SEND_EVERY):
                end = start + SEND_EVERY
                sent = len(written)
                dup, old, packed = write(
                    items[start:end], entries[start:end], fields, rules, now, written, dirty, moved
                )
                duplicates += dup
                late += old
                out.send_packed(packed, len(written) - sent)  # Redis starts on these while the rest is computed
            for employee, before, after in moved:
                commands += self._move(employee, before, after)
            for bucket, members in dirty.items():
                commands.append(command([ZADD, bulk(dirty_set(bucket).encode()), NX, *members]))
            newest, first_max = self._queue_activity(commands, activity, max_sha)
            if watermark_ms > 0:
                commands.append(("EVALSHA", max_sha, 1, WATERMARK, watermark_ms))
            out.send(commands)
            replies = await out.receive()
        first_max += len(written)
        result.duplicates += duplicates
        result.late += late
        result.slices += sum(len(partitions) for _, partitions in written)
        for reply in replies:
            if isinstance(reply, ResponseError):
                if str(reply).startswith("NOSCRIPT"):
                    self._shas = None  # Redis restarted without its scripts: load them and redo the batch,
                    self._cache.clear()  # with entries naming the new script (and the state Redis has now),
                    self._drop_tokens(list(self._tokens))  # and new tokens (the counters may have rolled back)
                    raise RedisConnectionError("redis lost the scripts; reloading")
                raise reply
        if replies[: len(written)].count(0) != len(written):  # some write met another writer or an erasure
            result.superseded += await self._settle(written, replies)
        await self._prune_departments(newest, replies[first_max : first_max + len(newest)])

    async def _settle(self, written: Sequence[tuple[str, list[int]]], replies: Sequence[object]) -> int:
        """After writes that did not simply land. Memory no longer matches Redis for those employees, so they
        are read again next time. Their ops need no redo: a slice that did not stay lost to a field with more of
        the partition's events (whose writer has these too), or the employee was forgotten. A plain HSET that
        created fields it meant to update (the reply counts them) found them deleted since, by an erasure or
        another writer: SETTLE_SLICES then decides what stays. Returns how many employees' writes were refused
        or undone, in part or whole."""
        superseded = 0
        for (employee, partitions), reply in zip(written, replies, strict=False):
            if reply == 0:
                continue
            self._cache.pop(employee, None)
            undone: object = reply
            if isinstance(reply, int) and reply > 0:
                written_fields: list[bytes] = []
                for p in partitions:
                    written_fields += (cast(bytes, self._fields[p]), b"")  # written already: settle only
                undone = await self._settle_slices(keys=[state_key(employee), gone_key(employee)], args=written_fields)
            if undone == -1 or (isinstance(undone, list) and 0 in undone):  # forgotten; a field with more events
                superseded += 1
        return superseded

    def _move(self, employee: str, before: str, after: str) -> list[tuple[Arg, ...]]:
        """Department membership follows the newest directory fact."""
        commands: list[tuple[Arg, ...]] = []
        if after:
            commands += [("SADD", dept_members(after), employee), ("SADD", DEPARTMENTS, after)]
        if before:
            commands.append(("SREM", dept_members(before), employee))
            commands += [("ZREM", leaderboard(window, before), employee) for window in self.cfg.leaderboards.windows]
        return commands

    def _queue_activity(
        self, commands: list[Command], activity: Mapping[tuple[str, int], Iterable[int]], max_sha: str
    ) -> tuple[dict[str, int], int]:
        """Queues the department day sets, then a MAX per department; returns the newest day per department
        and the position of the first MAX's reply (the previous newest day)."""
        newest: dict[str, int] = {}
        for (department, day), who in activity.items():
            if day <= self._dept_newest.get(department, -1) - DEPT_DAYS:
                continue
            key = dept_day(department, day)
            commands += [("SADD", key, *who), ("EXPIRE", key, DEPT_DAY_TTL)]
            if day > newest.get(department, -1):
                newest[department] = day
        first_max = len(commands)
        for department, day in newest.items():
            commands.append(("EVALSHA", max_sha, 1, dept_newest(department), day))
        if newest:
            commands.append(("SADD", DEPARTMENTS, *newest))
        return newest, first_max

    async def _prune_departments(self, newest: dict[str, int], previous: Sequence[object]) -> None:
        """Deletes department day sets older than the adoption window once a department's newest day moved."""
        prunes: list[str] = []
        for (department, day), before_raw in zip(newest.items(), previous, strict=True):
            before = int(before_raw) if before_raw is not None else -1  # type: ignore[call-overload]
            after = max(before, day)
            self._dept_newest[department] = after
            if before >= 0 and after > before:
                first = max(before - DEPT_DAYS + 1, after - DEPT_DAYS - 60)
                prunes += [dept_day(department, d) for d in range(first, after - DEPT_DAYS + 1)]
        if prunes:
            await self.redis.delete(*prunes)

    async def forget(self, employee: str, lb_windows: Sequence[str]) -> list[str]:
        """Deletes an employee's state (idempotent) and cleans indexes; returns the departments cleaned."""
        self._cache.pop(employee, None)
        state = employee_from_hash(await self.redis.hgetall(state_key(employee)))
        department = state.department if state is not None else ""
        _, depts_raw = await self._forget(
            keys=[state_key(employee), gone_key(employee)], args=[self.forgotten_ttl, department]
        )
        departments = sorted({d for d in _s(depts_raw).split(",") if d})
        pipe = self.redis.pipeline(transaction=False)
        bucket = home_bucket(employee, self.buckets)
        for window in lb_windows:
            pipe.zrem(leaderboard(window), employee)
            for department in departments:
                pipe.zrem(leaderboard(window, department), employee)
        for department in departments:
            pipe.srem(dept_members(department), employee)
        pipe.zrem(active_index(bucket), employee)
        pipe.zrem(dirty_set(bucket), employee)
        pipe.zrem(taking_set(bucket), employee)
        await pipe.execute()
        return departments

    async def forget_done(self, employee: str) -> None:
        """Marks the cleanup finished (the marker itself stays until its TTL)."""
        await self.redis.set(gone_key(employee), "", xx=True, keepttl=True)

    async def watermark(self) -> int:
        value = await self.redis.get(WATERMARK)
        return int(value) if value else 0

    async def read_states(self, employees: Sequence[str]) -> dict[str, EmployeeState | None]:
        """States of several employees in one round trip; None for forgotten or unknown ones."""
        hashes = state_hashes(await self.reads.execute(state_reads(employees)))
        return {
            employee: None if fields is None else employee_from_hash(fields)
            for employee, fields in zip(employees, hashes, strict=True)
        }

    async def dirty(self, bucket: int, limit: int, until: float) -> list[tuple[str, float]]:
        """The emitter's next chunk (at most `limit`, oldest marks first, none made after `until`); `published`
        clears it."""
        flat = await self._take(keys=[dirty_set(bucket), taking_set(bucket)], args=[limit, repr(until)])
        return [(_s(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def published(
        self,
        bucket: int,
        done: Sequence[tuple[str, float]],
        boards: Sequence[tuple[str, str, bool, int, dict[str, float]]],
    ) -> None:
        """After a publish: leaderboards, the active index, and the published chunk leaves the taking set.

        `boards` rows: (employee, department, opt_out, as_of_day, totals by window).
        """
        pipe = self.redis.pipeline(transaction=False)
        active: dict[str, int] = {}
        ranked: dict[str, dict[str, float]] = defaultdict(dict)
        unranked: dict[str, list[str]] = defaultdict(list)
        for employee, department, opt_out, as_of_day, totals in boards:
            for window, total in totals.items():
                keys = [leaderboard(window)] + ([leaderboard(window, department)] if department else [])
                for key in keys:
                    if opt_out:
                        unranked[key].append(employee)
                    else:
                        ranked[key][employee] = total
            if as_of_day >= 0:
                active[employee] = as_of_day
        lb = self.cfg.leaderboards
        for key, members in ranked.items():
            pipe.zadd(key, members)
            size = lb.department_size if ":dept:" in key else lb.size
            pipe.zremrangebyrank(key, 0, -(size + 1))  # only the top of each board is kept
        for key, gone in unranked.items():
            pipe.zrem(key, *gone)
        if active:
            pipe.zadd(active_index(bucket), active, gt=True)
        if done:
            args: list[str] = []
            for employee, score in done:
                args += (employee, repr(score))
            await self._untake(keys=[taking_set(bucket)], args=args, client=pipe)
        await pipe.execute()

    async def rollover(self, bucket: int, day: int) -> int:
        """Marks dirty every employee of the bucket whose windows move when event time reaches `day`."""
        previous = await self.redis.get(rolled_key(bucket))
        if previous is not None and int(previous) >= day:
            return 0
        keep = self.cfg.keep_days
        index = active_index(bucket)
        members = await self.redis.zrangebyscore(index, day - keep, "+inf")
        score = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(members), 1000):
            pipe.zadd(dirty_set(bucket), {_s(m): score for m in members[start : start + 1000]}, nx=True)
        pipe.zremrangebyscore(index, "-inf", f"({day - keep}")
        await self._max(keys=[rolled_key(bucket)], args=[day], client=pipe)
        await pipe.execute()
        return len(members)
