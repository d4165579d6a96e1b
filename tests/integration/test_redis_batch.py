"""The hiredis batch connection against a real Redis: order, error replies, reconnection."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from services.common.redis_batch import RedisBatch


async def test_replies_come_back_in_order_with_errors_as_values(redis_url: str) -> None:
    batch = RedisBatch.from_url(redis_url)
    replies = await batch.execute([("SET", "k", "v"), ("INCR", "k"), ("GET", "k"), ("HSET", "h", "f", 1)])
    assert replies[0] == b"OK" and replies[2] == b"v" and replies[3] == 1
    assert isinstance(replies[1], ResponseError)
    await batch.close()


async def test_a_dropped_connection_raises_and_the_next_batch_reconnects(redis_url: str) -> None:
    batch = RedisBatch.from_url(redis_url)
    assert await batch.execute([("PING",)]) == [b"PONG"]
    redis.Redis.from_url(redis_url).execute_command("CLIENT", "KILL", "TYPE", "normal")
    with pytest.raises(RedisConnectionError):
        await batch.execute([("PING",)])
    assert await batch.execute([("PING",)]) == [b"PONG"]
    await batch.close()
