"""How the engagement worker's processes publish to Kafka: the name they sign their events with and the
publish call they are given (faust's producer in the consumer process, aiokafka's in the publisher process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

PRODUCER = "engagement"

# (topic, key, value or None for a tombstone) -> an awaitable that resolves once the broker acknowledged.
Publish = Callable[[str, bytes, bytes | None], Awaitable[Awaitable[object]]]
