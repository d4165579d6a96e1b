"""`python -m services.engagement.publisher`: publishes coalesced ScoreChanged until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os
import time

from aiokafka import AIOKafkaProducer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from services.common.consumer_lag import KafkaOffsets
from services.common.grpc_server import run_until_signalled, serve_metrics
from services.common.logging import configure_logging
from services.common.settings import load
from services.engagement.adapters.redis_store import RedisStore
from services.engagement.adapters.retrying import Retrying
from services.engagement.model.config import load_model
from services.engagement.publisher.publisher import Publisher, PublisherMetrics
from services.engagement.publisher.settings import PublisherSettings


async def serve(settings: PublisherSettings, registry: CollectorRegistry) -> None:
    log = configure_logging("engagement-publisher", settings.log_level)
    model = load_model(settings.scoring_file)
    metrics = PublisherMetrics(registry)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="catalyst-engagement-publisher",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        sent = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*sent)

    async def broadcast(topic: str, key: bytes, value: bytes) -> None:
        partitions = sorted(await producer.partitions_for(topic))
        sent = [await producer.send(topic, value, key=key, partition=p) for p in partitions]
        await asyncio.gather(*sent)

    offsets = KafkaOffsets(settings.kafka_bootstrap, timeout_ms=5_000)
    topic, group = settings.topic_interactions, settings.engagement_group_id

    async def backlog() -> int:
        """The worker group's lag on the interactions topic (0 when the broker cannot say: publish as usual)."""
        try:
            read = await asyncio.to_thread(offsets.read, [topic], {group: [topic]})
        except (KafkaError, OSError) as exc:
            log.warning("the worker's backlog is unknown (%s); publishing as if it had none", exc)
            offsets.reset()
            return 0
        return sum(lag.lag for lag in read.lags)

    store = RedisStore.connected(settings, model.keep_days)
    retrying = Retrying(metrics, settings.publisher_redis_backoff_max_seconds)
    publisher = Publisher(store, publish, broadcast, model, settings, metrics, retrying, backlog=backlog)

    async def loop() -> None:
        while not publisher.stopping.is_set():
            started = time.monotonic()
            try:
                await publisher.run_once()
            except Exception:
                log.exception("publishing round failed; trying again next round")
            await publisher.rest(time.monotonic() - started)

    task: asyncio.Task | None = None

    async def start() -> None:
        nonlocal task
        await producer.start()
        await publisher.start()
        task = asyncio.ensure_future(loop())
        log.info("engagement publisher started", extra={"topic": settings.topic_engagement})

    async def stop() -> None:
        publisher.stopping.set()
        if task is not None:
            await asyncio.wait({task}, timeout=settings.shutdown_grace_seconds)
        await producer.stop()
        offsets.reset()

    await run_until_signalled([start], [stop])


def main() -> None:
    settings = load(PublisherSettings)
    os.nice(settings.publisher_nice)
    registry = CollectorRegistry()
    serve_metrics(settings.metrics_host, settings.publisher_metrics_port, registry)
    asyncio.run(serve(settings, registry))


if __name__ == "__main__":
    main()
