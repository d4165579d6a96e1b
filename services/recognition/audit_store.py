"""The audit store in Redis: a projection of catalyst.audit.v1 that can be read per person, per actor and as
one log, newest first. Append-only: entries are added (idempotently, by their bytes) and leave only when they
are older than the retention; nothing else removes or changes them.

Keys: `audit:{emp:<id>}:about` (look-ups of one person's data), `audit:{actor:<subject>}:by` (look-ups by one
caller) and `audit:log` (all), sorted sets scored by the time of the look-up whose members are the entries.
"""

from __future__ import annotations

from datetime import timedelta

from catalyst.events.v1 import envelope_pb2
from redis.asyncio import Redis

LOG_KEY = "audit:log"


def about_key(employee_id: str) -> str:
    return f"audit:{{emp:{employee_id}}}:about"


def by_key(actor: str) -> str:
    return f"audit:{{actor:{actor}}}:by"


def _at_ms(env: envelope_pb2.Envelope) -> int:
    return env.occurred_at.ToMilliseconds()


class AuditStore:
    def __init__(self, redis: Redis, retention: timedelta) -> None:
        self._redis = redis
        self._retention_ms = int(retention.total_seconds() * 1000)

    async def append(self, entries: list[envelope_pb2.Envelope], now_ms: int) -> int:
        """Adds entries (a replayed entry is added once); returns how many entries passed the retention and
        left the touched keys. A key that gets no entry for a whole retention period expires as a whole."""
        horizon = now_ms - self._retention_ms
        keys: set[str] = {LOG_KEY}
        pipe = self._redis.pipeline(transaction=False)
        for env in entries:
            if _at_ms(env) <= horizon:
                continue
            member = env.SerializeToString(deterministic=True)
            for key in (about_key(env.employee_id), by_key(env.data_accessed.actor)):
                pipe.zadd(key, {member: _at_ms(env)})
                keys.add(key)
            pipe.zadd(LOG_KEY, {member: _at_ms(env)})
        for key in sorted(keys):
            pipe.zremrangebyscore(key, "-inf", horizon)
            pipe.pexpire(key, self._retention_ms)
        results = await pipe.execute()
        return sum(results[len(results) - 2 * len(keys) :: 2])

    async def expire(self, now_ms: int) -> int:
        """Removes what passed the retention from the log (per-person and per-actor keys expire by TTL or at
        their next append)."""
        return await self._redis.zremrangebyscore(LOG_KEY, "-inf", now_ms - self._retention_ms)

    async def _page(self, key: str, offset: int, count: int, now_ms: int) -> tuple[list[envelope_pb2.Envelope], bool]:
        raw = await self._redis.zrevrangebyscore(
            key, "+inf", now_ms - self._retention_ms + 1, start=offset, num=count + 1
        )
        return [envelope_pb2.Envelope.FromString(r) for r in raw[:count]], len(raw) > count

    async def about(self, employee_id: str, offset: int, count: int, now_ms: int) -> tuple[list, bool]:
        return await self._page(about_key(employee_id), offset, count, now_ms)

    async def by(self, actor: str, offset: int, count: int, now_ms: int) -> tuple[list, bool]:
        return await self._page(by_key(actor), offset, count, now_ms)

    async def log(self, offset: int, count: int, now_ms: int) -> tuple[list, bool]:
        return await self._page(LOG_KEY, offset, count, now_ms)

    async def between(self, since_ms: int, until_ms: int, now_ms: int, limit: int) -> list[envelope_pb2.Envelope]:
        """Entries of a period (within the retention), at most `limit` + 1 so a caller can tell it was cut."""
        low = max(since_ms, now_ms - self._retention_ms + 1)
        raw = await self._redis.zrangebyscore(LOG_KEY, low, until_ms, start=0, num=limit + 1)
        return [envelope_pb2.Envelope.FromString(r) for r in raw]

    async def oldest_ms(self) -> int | None:
        first = await self._redis.zrange(LOG_KEY, 0, 0, withscores=True)
        return int(first[0][1]) if first else None
