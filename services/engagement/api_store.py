"""Redis adapter of the engagement query server: reads the worker's keys (docs/engagement.md) and writes
only what the query side owns: the ranking opt-out `oo`, leaderboard entries it removes or restores, and
dirty marks so the worker re-publishes the employee's ScoreChanged."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.engagement.scoring import EmployeeState, pseudonym
from services.engagement.store import (
    DEPARTMENTS,
    OPT_OUT,
    WATERMARK,
    dept_day,
    dept_members,
    dirty_set,
    employee_from_hash,
    gone_key,
    home_bucket,
    leaderboard,
    state_key,
)

CHUNK = 500  # employees per pipeline round trip

# KEYS: {emp:<id>}:s, {emp:<id>}:gone; ARGV: "1" opt out, "0" opt in; the opt-out field.
# Refuses (returns 0) for a forgotten employee, so a preference can never resurrect erased state.
SET_OPT_OUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], ARGV[2], '1') else redis.call('HDEL', KEYS[1], ARGV[2]) end
return 1
"""


def _s(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


@dataclass(frozen=True)
class Listing:
    """What a leaderboard row needs to know about an employee."""

    visible: bool  # has state, not forgotten, not opted out
    department: str
    name: str


class ApiStore:
    def __init__(self, client: aioredis.Redis, buckets: int) -> None:
        self.redis = client
        self.buckets = buckets
        self._set_opt_out = client.register_script(SET_OPT_OUT)

    async def watermark(self) -> int:
        value = await self.redis.get(WATERMARK)
        return int(value) if value else 0

    async def read_states(self, employees: Sequence[str]) -> dict[str, EmployeeState | None]:
        """States by employee; None for unknown or forgotten ones."""
        out: dict[str, EmployeeState | None] = {}
        for start in range(0, len(employees), CHUNK):
            chunk = employees[start : start + CHUNK]
            pipe = self.redis.pipeline(transaction=False)
            for employee in chunk:
                pipe.hgetall(state_key(employee))
                pipe.exists(gone_key(employee))
            replies = await pipe.execute()
            for i, employee in enumerate(chunk):
                fields, gone = replies[2 * i : 2 * i + 2]
                out[employee] = None if gone else employee_from_hash(fields)
        return out

    async def read_state(self, employee: str) -> EmployeeState | None:
        return (await self.read_states([employee]))[employee]

    async def board(self, window: str, department: str, offset: int, count: int) -> list[tuple[str, float]]:
        """Raw leaderboard rows (best first) from position `offset`."""
        key = leaderboard(window, department or None)
        rows = await self.redis.zrevrange(key, offset, offset + count - 1, withscores=True)
        return [(_s(member), float(score)) for member, score in rows]

    async def board_size(self, window: str, department: str) -> int:
        return int(await self.redis.zcard(leaderboard(window, department or None)))

    async def members(self, department: str, windows: Sequence[str]) -> list[str]:
        """The department's employees; for the company, every department's and whoever is on a board."""
        if department:
            return sorted(_s(m) for m in await self.redis.smembers(dept_members(department)))
        keys = [dept_members(d) for d in await self.departments()]
        everyone = {_s(m) for m in await self.redis.sunion(keys)} if keys else set()
        for window in windows:
            everyone.update(_s(m) for m in await self.redis.zrange(leaderboard(window), 0, -1))
        return sorted(everyone)

    async def listings(self, employees: Sequence[str]) -> dict[str, Listing]:
        states = await self.read_states(employees)
        out = {}
        for employee, state in states.items():
            if state is None:
                out[employee] = Listing(False, "", "")
            else:
                out[employee] = Listing(not state.opt_out, state.department, state.name)
        return out

    async def departments(self) -> list[str]:
        return sorted(_s(d) for d in await self.redis.smembers(DEPARTMENTS))

    async def department_sizes(self, departments: Sequence[str]) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for department in departments:
            pipe.scard(dept_members(department))
        return {d: int(n) for d, n in zip(departments, await pipe.execute(), strict=True)}

    async def department_activity(self, department: str, day: int) -> tuple[set[int], set[int], set[int], set[int]]:
        """Members, and the members' pseudonyms active in the last 7 days, the 7 before, and the last 30."""

        def days(first: int, last: int) -> list[str]:
            return [dept_day(department, d) for d in range(first, last + 1)]

        pipe = self.redis.pipeline(transaction=False)
        pipe.smembers(dept_members(department))
        pipe.sunion(days(day - 6, day))
        pipe.sunion(days(day - 13, day - 7))
        pipe.sunion(days(day - 29, day))
        members, last7, previous7, last30 = await pipe.execute()
        who = {pseudonym(_s(m)) for m in members}  # day sets hold pseudonyms
        return who, {int(x) for x in last7}, {int(x) for x in previous7}, {int(x) for x in last30}

    async def set_opt_out(self, employee: str, opt_out: bool) -> bool:
        """Writes the preference; False when the employee was forgotten (nothing is written then)."""
        keys = [state_key(employee), gone_key(employee)]
        return bool(await self._set_opt_out(keys=keys, args=["1" if opt_out else "0", OPT_OUT]))

    async def reindex(
        self, employee: str, departments: Sequence[str], windows: Sequence[str], totals: dict[str, float] | None
    ) -> None:
        """Removes the employee from the company and department boards (totals None) or restores their
        entries; then marks them dirty so the worker re-publishes ScoreChanged with the new preference and
        re-checks the boards (which also settles a race with a publish that read the old preference)."""
        pipe = self.redis.pipeline(transaction=False)
        for window in windows:
            if totals is None:
                pipe.zrem(leaderboard(window), employee)
                for department in departments:
                    pipe.zrem(leaderboard(window, department), employee)
            else:
                pipe.zadd(leaderboard(window), {employee: totals[window]})
                for department in departments:
                    pipe.zadd(leaderboard(window, department), {employee: totals[window]})
        pipe.zadd(dirty_set(home_bucket(employee, self.buckets)), {employee: time.time()}, nx=True)
        await pipe.execute()
