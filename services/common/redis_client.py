"""Redis connection factory; all services use redis.asyncio so the event loop never blocks."""

from __future__ import annotations

import redis.asyncio as aioredis


def connect(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, decode_responses=False, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )
