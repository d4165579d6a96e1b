"""The consumer's batch pipeline, against an in-memory Kafka: the next batch is planned while the one before
is still being written, batches are applied strictly in order, and offsets are marked only once applied."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.engagement.worker.consumer import InteractionsConsumer
from services.engagement.worker.handler import Record
from services.engagement.worker.metrics import WorkerMetrics
from services.engagement.worker.settings import EngagementWorkerSettings

TOPIC = "interactions"


class Message:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset, self.key, self.value, self.timestamp = partition, offset, b"k", b"v", 0


class FakeKafka:
    """getmany hands out the prepared batches, then stops the consumer; `revoke_after` drops a partition
    from the assignment once that many batches were handed out."""

    def __init__(self, batches: list[dict[int, range]], owner: list[Any], revoke_after: int = -1) -> None:
        self.batches = batches
        self.owner = owner
        self.revoke_after = revoke_after
        self.handed = 0
        self.assigned = {TopicPartition(TOPIC, p) for p in (0, 1)}

    def subscribe(self, topics: list[str], listener: object) -> None:
        pass

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Message]]:
        await asyncio.sleep(0)
        if self.handed == self.revoke_after:
            self.assigned.discard(TopicPartition(TOPIC, 1))
        if self.handed == len(self.batches):
            self.owner[0]._stopping.set()
            return {}
        batch = self.batches[self.handed]
        self.handed += 1
        return {TopicPartition(TOPIC, p): [Message(p, o) for o in offsets] for p, offsets in batch.items()}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def highwater(self, tp: TopicPartition) -> None:
        return None


class Handler:
    """Records the order of planning and applying; an apply takes a few event-loop turns, like a Redis
    round trip."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def plan(self, records: Sequence[Record]) -> int:
        first = records[0].offset
        self.log.append(f"plan {first}")
        return first

    async def apply(self, planned: int) -> None:
        self.log.append(f"apply {planned}")
        for _ in range(5):
            await asyncio.sleep(0)
        self.log.append(f"applied {planned}")

    def assigned(self, partitions: Sequence[int]) -> None:
        self.log.append(f"assigned {sorted(partitions)}")

    def revoked(self, partitions: Sequence[int]) -> None:
        self.log.append(f"revoked {sorted(partitions)}")


def consume(batches: list[dict[int, range]], revoke_after: int = -1) -> tuple[Handler, InteractionsConsumer]:
    handler = Handler()
    settings = EngagementWorkerSettings(worker_commit_interval_seconds=60)

    async def prepare() -> None:
        pass

    consumer = InteractionsConsumer(settings, prepare, handler, WorkerMetrics(CollectorRegistry()))
    consumer.topic = TOPIC
    consumer._kafka = FakeKafka(batches, [consumer], revoke_after)  # type: ignore[assignment]
    asyncio.run(consumer._run())
    return handler, consumer


def test_the_next_batch_is_planned_while_the_one_before_is_written_and_batches_apply_in_order() -> None:
    handler, consumer = consume([{0: range(0, 3)}, {0: range(3, 5), 1: range(0, 2)}, {1: range(2, 4)}])
    log = handler.log
    assert [e for e in log if e.startswith("apply ")] == ["apply 0", "apply 3", "apply 2"]
    assert log.index("plan 3") < log.index("applied 0")  # overlap: planned while batch 0 was in Redis
    assert log.index("applied 0") < log.index("apply 3") and log.index("applied 3") < log.index("apply 2")
    assert log[-1] == "applied 2"  # the last batch is finished before the loop ends
    assert consumer._done == {TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 1): 4}


def test_a_partition_revoked_while_its_batch_waited_is_not_marked_done() -> None:
    handler, consumer = consume([{0: range(0, 3)}, {0: range(3, 5), 1: range(0, 2)}], revoke_after=2)
    assert handler.log[-1] == "applied 3"
    assert consumer._done == {TopicPartition(TOPIC, 0): 5}


def test_the_fetch_settings_reach_the_kafka_consumer() -> None:
    async def prepare() -> None:
        pass

    async def build() -> Any:
        settings = EngagementWorkerSettings(worker_fetch_min_bytes=262_144, worker_fetch_max_wait_ms=20)
        consumer = InteractionsConsumer(settings, prepare, Handler(), WorkerMetrics(CollectorRegistry()))
        return consumer._new_consumer()

    kafka = asyncio.run(build())
    assert kafka._fetch_min_bytes == 262_144 and kafka._fetch_max_wait_ms == 20
