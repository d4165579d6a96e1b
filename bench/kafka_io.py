"""Kafka side of the benchmark: private topics, bulk loading, producing at a fixed rate, and offsets."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from services.common.kafka_admin import delete_topics, ensure_topics
from services.common.topics import TopicSpec, load_topics


def create_bench_topics(bootstrap: str, partitions: int) -> dict[str, str]:
    """Fresh copies of the declared topics (same config, unique names); interactions with `partitions`, plus a
    twin of it, "warmup", for warming the broker up."""
    suffix = f"bench-{uuid.uuid4().hex[:8]}"
    specs = []
    for spec in load_topics().values():
        count = partitions if spec.key == "interactions" else spec.partitions
        specs.append(TopicSpec(spec.key, f"{spec.name}.{suffix}", count, spec.config))
        if spec.key == "interactions":  # the broker's warm-up load goes here, never to the worker
            specs.append(TopicSpec("warmup", f"{spec.name}.warmup.{suffix}", count, spec.config))
    ensure_topics(bootstrap, specs)
    return {s.key: s.name for s in specs}


def drop_bench_topics(bootstrap: str, topics: dict[str, str]) -> None:
    delete_topics(bootstrap, list(topics.values()))


def _producer(bootstrap: str, linger_ms: int) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )


async def load(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Produces every record as fast as the producer takes them; returns how many."""
    producer = _producer(bootstrap, linger_ms=20)
    await producer.start()
    count = 0
    pending: list[asyncio.Future] = []
    try:
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            count += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


async def produce_at_rate(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]], rate: float
) -> tuple[int, float, float]:
    """Offers `records` at a fixed `rate` per second (ticks of 10 ms); returns (sent, seconds taken, CPU seconds
    this process spent while offering them: the load generator's share of the machine under test).

    Each tick's records go out as one batch per partition, built directly (`send_batch`), keyed to the
    partitions the default partitioner picks, like every other producer. Sending record by record cost the
    load generator ~33 CPU-µs per record, a third of a core at 10,000/s taken from the machine under test.
    The record timestamp (CreateTime) is taken as the record is added to its batch, so the worker's
    event-to-score histogram measures from the moment the event was offered."""
    producer = _producer(bootstrap, linger_ms=1)  # a tick's batches in one request
    await producer.start()
    available = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    partitions = [partitioner(key, available, available) for key, _ in records]
    pending: list[asyncio.Future] = []
    sent = 0
    started, cpu_started = time.perf_counter(), time.process_time()  # the partitions above are computed before
    try:
        while sent < len(records):
            due = min(len(records), int((time.perf_counter() - started) * rate) + 1)
            batches: dict[int, BatchBuilder] = {}
            while sent < due:
                key, value = records[sent]
                partition = partitions[sent]
                batch = batches.get(partition)
                if batch is None:
                    batch = batches[partition] = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value) is None:  # full: send it, start another
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = batches[partition] = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value)
                sent += 1
            for partition, batch in batches.items():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.sleep(0.01)
        await asyncio.gather(*pending)
        cpu = time.process_time() - cpu_started
    finally:
        await producer.stop()
    return sent, time.perf_counter() - started, cpu


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """End offset per partition (subscribing makes the consumer fetch the topic's metadata)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise SystemExit(f"topic {topic} has no partitions in the broker's metadata")
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in sorted(found)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}
