"""Invariant 1: writes acknowledged while Kafka is down reach Kafka once it is back, each exactly
once and in order per employee. Uses a private broker that the test stops and starts."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from catalyst.feed.v1 import feed_pb2 as pb

from services.common.topics import topic_name
from tests.integration.feed.harness import feed_settings, read_topic, start_feed, stop_feed, wait_for

pytestmark = pytest.mark.integration

EMPLOYEES = [f"e-{i}" for i in range(6)]


async def trial(feed: object, emp: str, n: int) -> None:
    await feed.call("RecordFeatureTrial", pb.RecordFeatureTrialRequest(feature_id=f"f-{n:04d}"), emp)


async def test_kafka_down_writes_accepted_then_every_event_published_once_in_order(
    redis_url: str, private_kafka: object
) -> None:
    topic = topic_name("interactions")
    feed = await start_feed(feed_settings(redis_url, private_kafka.bootstrap, topic, relay_backoff_seconds=0.5))
    try:
        await feed.directory(*[(e, e.upper(), f"d{i % 2}") for i, e in enumerate(EMPLOYEES)])
        for n in range(5):
            await asyncio.gather(*(trial(feed, e, n) for e in EMPLOYEES))
        await wait_for(lambda: feed.metric("feed_relay_published_total") == len(EMPLOYEES) * 6, timeout=60)

        await asyncio.to_thread(private_kafka.stop)
        for n in range(5, 45):
            await asyncio.gather(*(trial(feed, e, n) for e in EMPLOYEES))
        await wait_for(lambda: feed.metric("feed_outbox_depth") > 0, timeout=30)
        await asyncio.sleep(1.5)
        assert feed.metric("feed_outbox_oldest_age_seconds") > 1.0
        assert await feed.service.relay.depth() > 0

        await asyncio.to_thread(private_kafka.start)
        await wait_for(_empty(feed), timeout=120)
    finally:
        await stop_feed(feed)

    total = len(EMPLOYEES) * 46
    records = await read_topic(private_kafka.bootstrap, topic, expected=total, timeout=90, settle=3)
    ids = [r.envelope.event_id for r in records]
    assert len(ids) == total, f"expected {total} records, got {len(ids)}"
    assert len(set(ids)) == total, "an event was published twice"
    per_employee: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.envelope.HasField("feature_tried"):
            per_employee[r.key].append(r.envelope.feature_tried.feature_id)
    for emp in EMPLOYEES:
        assert per_employee[emp] == [f"f-{n:04d}" for n in range(45)], f"order broken for {emp}"


def _empty(feed: object) -> object:
    async def check() -> bool:
        return await feed.service.relay.depth() == 0

    return check
