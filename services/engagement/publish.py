"""How the engagement worker's processes publish to Kafka: the name they sign their events with and the
publish call they are given (faust's producer in the consumer process, aiokafka's in the publisher process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

PRODUCER = "engagement"

# (topic, key, value or None for a tombstone) -> an awaitable that resolves once the broker acknowledged.
Publish = Callable[[str, bytes, bytes | None], Awaitable[Awaitable[object]]]


async def publish_all(publish: Publish, topic: str, messages: Sequence[tuple[bytes, bytes | None]]) -> None:
    """Sends every message, then waits for all the broker's acknowledgements together (not one by one)."""
    acks = [await publish(topic, key, value) for key, value in messages]
    await asyncio.gather(*acks)
