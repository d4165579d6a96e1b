"""The worker's side of the publisher process: a publisher that cannot even be started is tried again, with
backoff, and counted (the real process is tested in tests/integration/engagement/test_publisher.py)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from services.engagement import publisher_link
from services.engagement.config import EngagementWorkerSettings
from services.engagement.metrics import WorkerMetrics
from services.engagement.publisher_link import PublisherLink


async def test_a_publisher_that_cannot_start_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_link, "COMMAND", ("/nonexistent/python", "-m", "services.engagement.publisher"))
    monkeypatch.setattr(publisher_link, "FIRST_RESTART_SECONDS", 0.01)
    metrics = WorkerMetrics(CollectorRegistry())
    settings = EngagementWorkerSettings(interactions_partitions=2)
    link = PublisherLink(settings, metrics, buckets=lambda: [0, 1], backlog=lambda: 0)
    supervising = asyncio.ensure_future(link._supervise())
    await asyncio.sleep(0.2)
    await link.on_stop()
    await asyncio.wait_for(supervising, 1)
    assert metrics.publisher_restarts._value.get() >= 2  # 0.01 s, then 0.02 s, ...
    assert not link.running
