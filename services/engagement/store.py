"""Redis adapter of the engagement processor: batched, idempotent writes and state reads (docs/engagement.md)."""

from __future__ import annotations

import re
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from services.engagement import lua
from services.engagement.config import ScoringConfig
from services.engagement.scoring import COUNTERS, EmployeeState, Op, pseudonym

_SPARSE = re.compile(rb"([a-z])(\d+)")
PRUNE_EVERY_DAYS = 7  # how often (in as-of days) an employee's expired days and colleagues are pruned
DEPT_DAYS = 30  # department activity day sets kept (the longest adoption figure is 30 days)
DEPT_DAY_TTL = 40 * 86_400  # wall-clock safety net for day sets a restarted worker could recreate
WATERMARK = "eng:wm"
DEPARTMENTS = "eng:depts"


def emp_keys(employee_id: str) -> tuple[str, str, str]:
    tag = f"{{emp:{employee_id}}}"
    return f"{tag}:s", f"{tag}:p", f"{tag}:gone"


def pair_key(employee_id: str) -> str:
    """Giver-to-receiver counts of the last few own days (pair caps); absent for most employees."""
    return f"{{emp:{employee_id}}}:q"


def dept_members(department: str) -> str:
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
    return f"eng:dirty:{bucket}"


def rolled_key(bucket: int) -> str:
    return f"eng:rolled:{bucket}"


def home_bucket(employee_id: str, buckets: int) -> int:
    """The bucket (= source partition number) whose worker publishes this employee's figures."""
    return zlib.crc32(employee_id.encode()) % buckets


def topic_tag(topic: str) -> str:
    return format(zlib.crc32(topic.encode()) & 0xFFFF, "04x")


@dataclass(frozen=True)
class Applied:
    """What the apply script reported for one employee."""

    gone: bool
    applied: int
    duplicates: int
    late: int
    department: str
    member_of: str
    as_of_day: int


@dataclass
class BatchResult:
    employees: dict[str, Applied] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return sum(a.duplicates for a in self.employees.values())

    @property
    def late(self) -> int:
        return sum(a.late for a in self.employees.values())


def _s(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def parse_state(state: dict[bytes, bytes], people: dict[bytes, bytes]) -> EmployeeState:
    """Decodes the two hashes of one employee into an EmployeeState."""
    out = EmployeeState()
    width = len(COUNTERS)
    pilot = [0, 0, 0, 0]
    for raw_key, raw_value in state.items():
        key = raw_key.decode()
        if key.isdigit():
            counts = [0] * width
            for letter, number in _SPARSE.findall(raw_value):
                counts[letter[0] - 97] = int(number)
            out.days[int(key)] = counts
        elif key == "a":
            out.as_of_day = int(raw_value)
        elif key == "pc":
            out.completeness = float(raw_value)
        elif key in ("l0", "l1", "l2", "l3"):
            pilot[int(key[1])] = int(raw_value)
        elif key == "dep":
            out.department = raw_value.decode()
        elif key == "nm":
            out.name = raw_value.decode()
        elif key == "oo":
            out.opt_out = raw_value == b"1"
        elif key == "v":
            out.changes = int(raw_value)
    out.pilot = (pilot[0], pilot[1], pilot[2], pilot[3])
    for raw_key, raw_value in people.items():
        value = int(raw_value)
        who = int(raw_key)
        if who > 0:
            out.givers[who] = (value // 2, bool(value & 1))
        else:
            out.receivers[-who] = value
    return out


class EngagementStore:
    """All Redis I/O of the worker: one pipeline round trip per batch, scripts per employee."""

    def __init__(
        self,
        client: aioredis.Redis,
        cfg: ScoringConfig,
        topic: str,
        buckets: int,
        forgotten_ttl_seconds: int,
    ) -> None:
        self.redis = client
        self.cfg = cfg
        self.tag = topic_tag(topic)
        self.buckets = buckets
        self.forgotten_ttl = forgotten_ttl_seconds
        self._apply = client.register_script(lua.APPLY)
        self._forget = client.register_script(lua.FORGET)
        self._max = client.register_script(lua.MAX)
        self._undirty = client.register_script(lua.UNDIRTY)
        self._dept_newest: dict[str, int] = {}
        self._fixed = [self.tag, str(cfg.keep_days), str(cfg.conversation.pair_cap_per_day)]
        self._fixed.append(str(cfg.conversation.pair_memory_days))
        self._fixed_bytes = [v.encode() for v in self._fixed]
        self._prune_every = str(PRUNE_EVERY_DAYS).encode()

    async def apply(
        self,
        ops: dict[str, list[tuple[int, int, Op]]],
        activity: Iterable[tuple[str, int, int]],
        watermark_ms: int,
    ) -> BatchResult:
        """Applies one batch: per-employee scripts, department activity, dirty marks and the watermark."""
        pipe = self.redis.pipeline(transaction=False)
        employees = list(ops)
        sha = self._apply.sha
        pipe.scripts.add(self._apply)  # loaded on first use and again after a Redis restart (NOSCRIPT)
        fixed = self._fixed_bytes
        for employee in employees:
            packed = "\x1e".join(
                f"{partition}\x1f{offset}\x1f{op.kind}\x1f{op.day}\x1f{op.x}\x1f{op.y}\x1f{op.z}"
                for partition, offset, op in ops[employee]
            )
            tag = f"{{emp:{employee}}}".encode()
            keys = (tag + b":s", tag + b":p", tag + b":gone", tag + b":q")
            pipe.evalsha(sha, 4, *keys, *fixed, packed.encode(), self._prune_every)
        by_day: dict[tuple[str, int], set[int]] = defaultdict(set)
        newest: dict[str, int] = {}
        for department, day, who in activity:
            if day <= self._dept_newest.get(department, -1) - DEPT_DAYS:
                continue
            by_day[(department, day)].add(who)
            if day > newest.get(department, -1):
                newest[department] = day
        for (department, day), who in by_day.items():
            key = dept_day(department, day)
            pipe.sadd(key, *who)
            pipe.expire(key, DEPT_DAY_TTL)
        departments = list(newest)
        for department in departments:
            await self._max(keys=[dept_newest(department)], args=[newest[department]], client=pipe)
        if departments:
            pipe.sadd(DEPARTMENTS, *departments)
        score = time.time()
        marks: dict[int, dict[str, float]] = defaultdict(dict)
        for employee in employees:
            marks[home_bucket(employee, self.buckets)][employee] = score
        for bucket, members in marks.items():
            pipe.zadd(dirty_set(bucket), members)
        if watermark_ms > 0:
            await self._max(keys=[WATERMARK], args=[watermark_ms], client=pipe)
        replies = await pipe.execute()

        result = BatchResult()
        for employee, reply in zip(employees, replies[: len(employees)], strict=True):
            gone, applied, duplicates, late, as_of_day, department, member_of = _s(reply).split("\x1f")
            result.employees[employee] = Applied(
                gone=gone == "1",
                applied=int(applied),
                duplicates=int(duplicates),
                late=int(late),
                department=department,
                member_of=member_of,
                as_of_day=int(as_of_day),
            )
        position = len(employees) + 2 * len(by_day)
        prunes: list[str] = []
        for department, previous in zip(departments, replies[position : position + len(departments)], strict=True):
            before = int(previous) if previous is not None else -1
            after = max(before, newest[department])
            self._dept_newest[department] = after
            if before >= 0 and after > before:
                first = max(before - DEPT_DAYS + 1, after - DEPT_DAYS - 60)
                prunes += [dept_day(department, d) for d in range(first, after - DEPT_DAYS + 1)]
        await self._follow_up(result, prunes)
        return result

    async def _follow_up(self, result: BatchResult, prunes: list[str]) -> None:
        """Department membership sync (dep != md) and pruning of old department day sets."""
        moves = [(e, a) for e, a in result.employees.items() if not a.gone and a.department != a.member_of]
        if not moves and not prunes:
            return
        pipe = self.redis.pipeline(transaction=False)
        for employee, applied in moves:
            who = pseudonym(employee)
            if applied.department:
                pipe.sadd(dept_members(applied.department), who)
                pipe.sadd(DEPARTMENTS, applied.department)
            if applied.member_of:
                pipe.srem(dept_members(applied.member_of), who)
                for window in self.cfg.leaderboards.windows:
                    pipe.zrem(leaderboard(window, applied.member_of), employee)
            pipe.hset(emp_keys(employee)[0], "md", applied.department)
        if prunes:
            pipe.delete(*prunes)
        await pipe.execute()

    async def forget(self, employee: str, lb_windows: Sequence[str]) -> list[str]:
        """Deletes an employee's state (idempotent) and cleans indexes; returns the departments cleaned."""
        s, p, gone = emp_keys(employee)
        _, depts_raw = await self._forget(keys=[s, p, gone, pair_key(employee)], args=[self.forgotten_ttl])
        departments = sorted({d for d in _s(depts_raw).split(",") if d})
        pipe = self.redis.pipeline(transaction=False)
        bucket = home_bucket(employee, self.buckets)
        for window in lb_windows:
            pipe.zrem(leaderboard(window), employee)
            for department in departments:
                pipe.zrem(leaderboard(window, department), employee)
        for department in departments:
            pipe.srem(dept_members(department), pseudonym(employee))
        pipe.zrem(active_index(bucket), employee)
        pipe.zrem(dirty_set(bucket), employee)
        await pipe.execute()
        return departments

    async def forget_done(self, employee: str) -> None:
        """Marks the cleanup finished (the marker itself stays until its TTL)."""
        await self.redis.set(emp_keys(employee)[2], "", xx=True, keepttl=True)

    async def watermark(self) -> int:
        value = await self.redis.get(WATERMARK)
        return int(value) if value else 0

    async def read_states(self, employees: Sequence[str]) -> dict[str, EmployeeState | None]:
        """States of several employees in one round trip; None for forgotten or unknown ones."""
        pipe = self.redis.pipeline(transaction=False)
        for employee in employees:
            s, p, _ = emp_keys(employee)
            pipe.hgetall(s)
            pipe.hgetall(p)
        replies = await pipe.execute()
        out: dict[str, EmployeeState | None] = {}
        for i, employee in enumerate(employees):
            state, people = replies[2 * i], replies[2 * i + 1]
            out[employee] = parse_state(state, people) if state else None  # forgetting deletes the state
        return out

    async def dirty(self, bucket: int, limit: int) -> list[tuple[str, float]]:
        rows = await self.redis.zrange(dirty_set(bucket), 0, limit - 1, withscores=True)
        return [(_s(member), score) for member, score in rows]

    async def published(
        self,
        bucket: int,
        done: Sequence[tuple[str, float]],
        boards: Sequence[tuple[str, str, bool, int, dict[str, float]]],
    ) -> None:
        """After a publish: leaderboards, the active index, and the dirty marks that did not change meanwhile.

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
        for key, members in ranked.items():
            pipe.zadd(key, members)
        for key, gone in unranked.items():
            pipe.zrem(key, *gone)
        if active:
            pipe.zadd(active_index(bucket), active, gt=True)
        if done:
            args: list[str] = []
            for employee, score in done:
                args += (employee, repr(score))
            await self._undirty(keys=[dirty_set(bucket)], args=args, client=pipe)
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
            pipe.zadd(dirty_set(bucket), {_s(m): score for m in members[start : start + 1000]})
        pipe.zremrangebyscore(index, "-inf", f"({day - keep}")
        await self._max(keys=[rolled_key(bucket)], args=[day], client=pipe)
        await pipe.execute()
        return len(members)
