"""What the query API reads and writes of the leaderboards beyond `RedisStore`'s own calls.

Both go through the store's client and its key helpers, so the keys stay the adapter's.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.engagement.adapters.redis_store import RedisStore, dept_members, leaderboard


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def everyone(store: RedisStore, windows: Sequence[str]) -> list[str]:
    """The company for a board computed from state: every department's members and whoever is on a company
    board (people the directory has not placed in a department yet)."""
    pipe = store.redis.pipeline(transaction=False)
    for department in await store.departments():
        pipe.smembers(dept_members(department))
    for window in windows:
        pipe.zrange(leaderboard(window), 0, -1)
    found: set[str] = set()
    for reply in await pipe.execute():
        found.update(_text(member) for member in reply)
    return sorted(found)


async def reindex(
    store: RedisStore, employee: str, department: str, windows: Sequence[str], totals: dict[str, float] | None
) -> None:
    """Takes the employee off the company and department boards (totals None) or puts their entries back, at
    once; the publisher, which `set_opt_out` marked the employee for, then indexes and trims as usual."""
    pipe = store.redis.pipeline(transaction=False)
    for window in windows:
        keys = [leaderboard(window)] + ([leaderboard(window, department)] if department else [])
        for key in keys:
            if totals is None:
                pipe.zrem(key, employee)
            else:
                pipe.zadd(key, {employee: totals[window]})
    await pipe.execute()
