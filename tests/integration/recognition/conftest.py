from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.recognition.harness import Harness, start_harness, stop_harness


@pytest.fixture
async def rec(common_env: dict[str, str]) -> AsyncIterator[Harness]:
    """A recognition process (consumer, relay, hub, gRPC on port 0) against this test's topics and Redis."""
    harness = await start_harness(common_env)
    yield harness
    await stop_harness(harness)
