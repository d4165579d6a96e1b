"""What only the Redis store keeps: department activity day sets, kept for the days the adoption figures read."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.engagement.adapters.redis_store import DEPT_DAYS_KEPT, RedisStore, dept_day
from services.engagement.model.config import load_model
from tests.unit.engagement.fakes import MARKER_TTL, PSEUDONYM_KEY


async def test_a_departments_day_sets_older_than_the_kept_days_go_when_its_newest_day_moves_on(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = RedisStore(client, load_model().keep_days, PSEUDONYM_KEY, MARKER_TTL)
    for first in range(0, 60, 7):  # a week of activity per batch, as a backfill delivers it
        await store.apply({}, {("sales", day): {day + 1} for day in range(first, first + 7)}, 0)
    newest = 62
    kept = [day for day in range(newest + 1) if await client.exists(dept_day("sales", day))]
    assert kept == list(range(newest - DEPT_DAYS_KEPT + 1, newest + 1))
    await client.aclose()
