"""Redis connection factory; all services use redis.asyncio so the event loop never blocks."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(url: str) -> aioredis.Redis:
    """A client that reconnects on its own: after a Redis restart the first command on a pooled (dead)
    connection is retried on a fresh one instead of surfacing 'Connection closed by server'. Longer
    outages still raise, and each service's loop decides how to wait."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
