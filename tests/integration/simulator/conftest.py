from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.feed.harness import Feed, feed_settings, start_feed, stop_feed


@pytest.fixture
async def feed(redis_url: str, kafka_bootstrap: str, topics: dict[str, str]) -> AsyncIterator[Feed]:
    """The real feed service in-process (port 0, relay on) against this test's Redis and topics."""
    service = await start_feed(feed_settings(redis_url, kafka_bootstrap, topics["interactions"]))
    yield service
    await stop_feed(service)
