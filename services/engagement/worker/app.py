"""Composition root of the engagement worker: settings -> faust app (lifecycle, signals, /health on its own
web port, the lag timer, the producer), the aiokafka consumer, the Redis store and the batch handler.

The interactions topic is consumed by `InteractionsConsumer` (plain aiokafka, started with the app), not by a
faust agent (docs/decisions/0004). ScoreChanged is published by a process of its own
(`python -m services.engagement.publisher`), so nothing here waits for publishing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from services.engagement.adapters.redis_store import RedisStore
from services.engagement.adapters.retrying import Retrying
from services.engagement.model.config import ScoringModel
from services.engagement.model.state import set_pseudonym_key
from services.engagement.worker.consumer import InteractionsConsumer
from services.engagement.worker.handler import Handler
from services.engagement.worker.metrics import WorkerMetrics
from services.engagement.worker.settings import EngagementWorkerSettings

log = logging.getLogger(__name__)


class _NoFaustConsumer(faust.App.BootStrategy):
    """faust's own consumer, topic conductor and tables never start: faust joins no group, subscribes nothing."""

    enable_kafka_consumer = False


class _App(faust.App):
    BootStrategy = _NoFaustConsumer


class Worker:
    def __init__(self, settings: EngagementWorkerSettings, model: ScoringModel, registry: CollectorRegistry) -> None:
        self.settings = settings
        set_pseudonym_key(settings.pseudonym_key)
        self.metrics = WorkerMetrics(registry)
        retrying = Retrying(self.metrics, settings.worker_redis_backoff_max_seconds)
        self.store = RedisStore.connected(settings, model.keep_days)
        self.app = self._build_app()
        topics = (settings.topic_interactions, settings.topic_engagement, settings.topic_deadletter)
        self.handler = Handler(self.store, self._publish, model, topics, self.metrics, retrying)
        self.consumer = InteractionsConsumer(settings, self._start_processing, self.handler, self.metrics)
        self._started = asyncio.Event()
        self._register()

    def _build_app(self) -> faust.App:
        """faust for the producer, web server, timers and lifecycle only. Its id is not the consumer group, so
        even a faust consumer could never join the group the interactions consumer and the tests rely on."""
        s = self.settings
        brokers = ";".join(f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(","))
        return _App(
            f"{s.engagement_group_id}-app",
            broker=brokers,
            store="memory://",
            datadir=str(s.worker_data_dir),
            topic_allow_declare=False,
            topic_disable_leader=True,
            producer_acks=-1,
            producer_linger_ms=5,
            web_enabled=True,
            web_port=s.worker_web_port,
            web_bind=s.worker_web_host,
            web_host=s.worker_web_host,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )

    async def _publish(self, topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        """Sends every message and waits until the broker acknowledged all of them."""
        pending = [await self.app.producer.send(topic, key, value, None, None, None) for key, value in messages]
        await asyncio.gather(*pending)

    async def _start_processing(self) -> None:
        """Before the first poll: the event-time watermark from Redis (retried while Redis is away)."""
        await self.handler.start()
        self._started.set()
        log.info("engagement worker started", extra={"watermark_ms": self.handler.watermark_ms})

    def _register(self) -> None:
        app = self.app
        app.service(self.consumer)

        @app.timer(self.settings.worker_lag_interval_seconds)
        async def lag() -> None:
            try:
                await self.consumer.export_lag()
            except Exception as exc:
                log.warning("consumer lag unavailable: %s", exc)

        @app.page("/health")
        async def health(view: View, request: Request) -> Response:
            return view.json(
                {
                    "status": "ok" if self._started.is_set() and self.consumer.serving else "starting",
                    "partitions": self.consumer.partitions(),
                    "watermark_ms": self.handler.watermark_ms,
                }
            )

        @app.on_before_shutdown.connect
        async def closing(sender: faust.App, **kwargs: Any) -> None:
            log.info("engagement worker shutting down")
