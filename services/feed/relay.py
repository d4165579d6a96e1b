"""`python -m services.feed.relay`: the outbox relay as a process of its own, until SIGTERM.

Ingest and relay then run in two interpreters, so on two cores instead of one GIL; the gRPC replicas run
with `CATALYST_RELAY_ENABLED=false`. Several relay processes may run: the Redis lease lets one publish.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from prometheus_client import REGISTRY, CollectorRegistry

from services.common.grpc_server import run_until_signalled, serve_metrics
from services.common.logging import configure_logging
from services.common.redis_client import connect
from services.common.settings import load
from services.feed.config import FeedSettings
from services.feed.outbox import KafkaPublisher, OutboxRelay, ProducerTuning, RelayMetrics, producer_factory

log = logging.getLogger(__name__)


def build_relay(settings: FeedSettings, redis: aioredis.Redis, registry: CollectorRegistry = REGISTRY) -> OutboxRelay:
    """The relay of these settings; the gRPC process builds the same one when `relay_enabled`."""
    publisher = KafkaPublisher(
        producer_factory(
            settings.kafka_bootstrap,
            settings.relay_delivery_timeout_ms,
            settings.relay_request_timeout_ms,
            ProducerTuning(settings.relay_compression, settings.relay_batch_bytes, settings.relay_linger_ms),
        ),
        settings.topic_interactions,
    )
    return OutboxRelay(
        redis,
        publisher,
        settings.outbox_partitions,
        RelayMetrics(registry),
        batch_size=settings.relay_batch_size,
        idle_seconds=settings.relay_idle_seconds,
        backoff_seconds=settings.relay_backoff_seconds,
        lease_seconds=settings.relay_lease_seconds,
    )


async def serve(settings: FeedSettings, registry: CollectorRegistry = REGISTRY) -> None:
    """Publishes until SIGTERM/SIGINT, then drains the outbox for up to `relay_drain_seconds`."""
    redis = connect(settings.redis_url)
    relay = build_relay(settings, redis, registry)

    async def stop() -> None:
        await relay.drain(settings.relay_drain_seconds)
        await redis.aclose()

    log.info("feed relay starting", extra={"metrics_port": settings.relay_metrics_port})
    await run_until_signalled([relay.start], [stop])


def main() -> None:
    settings = load(FeedSettings)
    configure_logging("feed-relay", settings.log_level)
    serve_metrics(settings.metrics_host, settings.relay_metrics_port)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
