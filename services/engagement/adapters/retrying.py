"""Retries inside the loop: a transient Redis or Kafka fault is waited out with capped backoff, never raised
(an exception would lose the batch or the round in hand)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError
from prometheus_client import Counter, Histogram
from redis.exceptions import BusyLoadingError, ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ClusterDownError, TryAgainError, OSError)


class RetryMetrics(Protocol):
    """The metrics a retrying process exports (worker and publisher alike)."""

    redis_retries: Counter
    redis_latency: Histogram
    kafka_retries: Counter


class Retrying:
    """Runs an async operation until it succeeds, backing off (capped) on transient faults."""

    def __init__(self, metrics: RetryMetrics, max_backoff: float) -> None:
        self.metrics = metrics
        self.max_backoff = max_backoff

    async def redis(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        delay = 0.05
        while True:
            started = time.perf_counter()
            try:
                result = await call()
            except TRANSIENT as exc:
                self.metrics.redis_retries.labels(op).inc()
                log.warning("redis %s failed (%s); retrying in %.2fs", op, exc, delay)
            else:
                self.metrics.redis_latency.labels(op).observe(time.perf_counter() - started)
                return result
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def kafka(self, topic: str, publish: Callable[[], Awaitable[None]]) -> None:
        delay = 0.1
        while True:
            try:
                await publish()
                return
            except (KafkaError, TimeoutError, OSError) as exc:
                self.metrics.kafka_retries.labels(topic).inc()
                log.warning("publish to %s failed (%s); retrying in %.2fs", topic, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
