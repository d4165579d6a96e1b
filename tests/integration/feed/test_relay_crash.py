"""A relay that dies after the broker acknowledged a batch but before it removed the entries:
the next relay publishes those entries again, byte for byte, so each carries the same event id, to the
partition Java's key partitioner (kafka-python's default) picks for the employee."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from catalyst.feed.v1 import feed_pb2 as pb
from kafka.partitioner.default import murmur2
from prometheus_client import CollectorRegistry

from services.common.redis_client import connect
from services.common.topics import load_topics
from services.feed.outbox import KafkaPublisher, OutboxEntry, OutboxRelay, RelayMetrics, producer_factory
from services.feed.store import Keys
from tests.integration.feed.harness import feed_settings, read_topic, start_feed, stop_feed

pytestmark = pytest.mark.integration


class RelayKilled(BaseException):
    """Stands in for the process dying: nothing after it runs."""


class DiesAfterPublish(KafkaPublisher):
    def publish(self, entries: list[OutboxEntry]) -> list[bool]:
        acked = super().publish(entries)
        assert all(acked)
        raise RelayKilled


def relay(settings: object, publisher: KafkaPublisher) -> OutboxRelay:
    return OutboxRelay(
        connect(settings.redis_url), publisher, settings.outbox_partitions, RelayMetrics(CollectorRegistry())
    )


def publisher(settings: object, cls: type[KafkaPublisher] = KafkaPublisher) -> KafkaPublisher:
    return cls(producer_factory(settings.kafka_bootstrap, 120_000, 10_000), settings.topic_interactions)


async def test_republish_after_a_crash_between_publish_and_removal_keeps_the_event_ids(
    redis_url: str, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    settings = feed_settings(redis_url, kafka_bootstrap, topics["interactions"], relay_enabled=False)
    feed = await start_feed(settings)
    try:
        await feed.directory(("e-1", "One", "d"), ("e-2", "Two", "d"))
        for n in range(3):
            await feed.call("RecordFeatureTrial", pb.RecordFeatureTrialRequest(feature_id=f"f-{n}"), "e-1")
            await feed.call("RecordFeatureTrial", pb.RecordFeatureTrialRequest(feature_id=f"f-{n}"), "e-2")
    finally:
        await stop_feed(feed)

    dying = publisher(settings, DiesAfterPublish)
    doomed = relay(settings, dying)
    with pytest.raises(RelayKilled):
        await doomed.publish_once()
    await asyncio.to_thread(dying.close, 5.0)
    assert await doomed.depth() == 8, "the entries must still be in the outbox"

    survivor = relay(settings, publisher(settings))
    # The dead relay's lease would block the survivor until it expires; a real restart waits that out.
    await connect(settings.redis_url).delete(Keys.RELAY_LEASE)
    published, failed = await survivor.publish_once()
    assert (published, failed) == (8, 0)
    assert await survivor.depth() == 0
    await survivor.drain(5)

    records = await read_topic(kafka_bootstrap, topics["interactions"], expected=16)
    assert len(records) == 16
    copies = Counter(r.envelope.event_id for r in records)
    assert set(copies.values()) == {2}, "each event went out twice, with the same id"
    raw_by_id: dict[str, set[bytes]] = {}
    for r in records:
        raw_by_id.setdefault(r.envelope.event_id, set()).add(r.raw)
    assert all(len(versions) == 1 for versions in raw_by_id.values()), "a republish must be byte-identical"
    partitions = load_topics()["interactions"].partitions
    assert all(r.partition == (murmur2(r.key.encode()) & 0x7FFFFFFF) % partitions for r in records)
