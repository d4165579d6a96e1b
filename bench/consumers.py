"""The two reference consumers the Catalyst worker is measured against, run inside the bench process."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from catalyst.events.v1 import envelope_pb2

from bench.report import Measured


def _consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


async def raw_ceiling(bootstrap: str, topic: str, expected: int) -> Measured:
    """Consume and discard: the most any Python consumer on this broker and machine can do."""
    consumer = _consumer(bootstrap, topic)
    await consumer.start()
    seen = 0
    started, cpu = time.perf_counter(), time.process_time()
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(b) for b in batches.values())
    finally:
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        await consumer.stop()
    return Measured("raw aiokafka consume-and-discard", seen, wall, cpu)


async def drain(bootstrap: str, topic: str, stop: asyncio.Event) -> None:
    """Consume and discard until `stop` is set, committing once a second as the worker does: the broker's
    fetch and commit paths at the latency phase's load, without the worker or its state."""
    consumer = _consumer(bootstrap, topic)
    await consumer.start()
    next_commit = time.monotonic() + 1.0
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            if batches and time.monotonic() >= next_commit:
                await consumer.commit()
                next_commit = time.monotonic() + 1.0
    finally:
        await consumer.stop()


async def naive(bootstrap: str, topic: str, redis_url: str, limit: int) -> Measured:
    """What a quick implementation does: decode each event, then Redis round trips for it (dedupe by event
    id, add to a per-kind score, bump a leaderboard), one after the other."""
    consumer = _consumer(bootstrap, topic)
    store = aioredis.Redis.from_url(redis_url)
    await consumer.start()
    seen = 0
    started, cpu = time.perf_counter(), time.process_time()
    try:
        while seen < limit:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for record in records:
                    env = envelope_pb2.Envelope.FromString(record.value)
                    tag = f"{{emp:{env.employee_id}}}"
                    if await store.sadd(f"naive:{tag}:seen", env.event_id):
                        kind = env.WhichOneof("payload") or "unknown"
                        await store.hincrbyfloat(f"naive:{tag}:score", kind, 1.0)
                        await store.zincrby("naive:leaderboard", 1.0, env.employee_id)
                    seen += 1
                    if seen >= limit:
                        break
                if seen >= limit:
                    break
    finally:
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        await consumer.stop()
        await store.aclose()
    return Measured("naive consumer, Redis round trips per event", seen, wall, cpu)
