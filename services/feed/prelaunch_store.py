"""Redis adapter of the registered pre-launch sessions.

  feed:session:<id>   string: the session (JSON, services/feed/prelaunch.py)
  feed:sessions       set of registered session ids
Sessions are about events, not people (the organiser's id aside, who acts in that role), so they are kept
until the programme owner's data is no longer needed; attendance lives in each attendee's own keys.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from services.feed import prelaunch
from services.feed.prelaunch import Session

SESSIONS = "feed:sessions"


def session_key(session_id: str) -> str:
    return f"feed:session:{session_id}"


class SessionRegistry:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def get(self, session_id: str) -> Session | None:
        raw = await self._redis.get(session_key(session_id))
        return prelaunch.decode(raw) if raw else None

    async def put(self, session: Session) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(session_key(session.session_id), prelaunch.encode(session))
            pipe.sadd(SESSIONS, session.session_id)
            await pipe.execute()

    async def all(self) -> list[Session]:
        ids = sorted(m.decode() for m in await self._redis.smembers(SESSIONS))
        raws = await self._redis.mget([session_key(i) for i in ids]) if ids else []
        found = [prelaunch.decode(r) for r in raws if r]
        return sorted(found, key=lambda s: (s.starts_ms, s.session_id))
