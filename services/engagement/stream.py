"""The faust-streaming app of the engagement worker: lifecycle and signals, a /health page on the worker's own
faust web port, the lag timer, the producer. The interactions topic is consumed by `InteractionsConsumer`
(plain aiokafka, started with the app), not by a faust agent: see
docs/decisions/0004-engagement-consumes-with-aiokafka.md. ScoreChanged events are published by a process of
the worker's own (`PublisherLink`, docs/decisions/0010-engagement-publishes-from-a-process-of-its-own.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from services.common.redis_client import connect
from services.engagement.config import EngagementWorkerSettings, ScoringConfig
from services.engagement.consumer import InteractionsConsumer
from services.engagement.metrics import WorkerMetrics
from services.engagement.processor import Processor
from services.engagement.publisher_link import PublisherLink
from services.engagement.retrying import Retrying
from services.engagement.store import EngagementStore

log = logging.getLogger(__name__)


class _NoFaustConsumer(faust.App.BootStrategy):
    """faust's own consumer, topic conductor and tables never start: faust joins no group, subscribes nothing."""

    enable_kafka_consumer = False


class _App(faust.App):
    BootStrategy = _NoFaustConsumer


class Worker:
    """Composition root of the engagement worker: settings -> faust app, consumer, store, processor, publisher."""

    def __init__(self, settings: EngagementWorkerSettings, cfg: ScoringConfig, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.cfg = cfg
        self.metrics = WorkerMetrics(registry)
        self.retrying = Retrying(self.metrics, settings.worker_redis_backoff_max_seconds)
        self.redis = connect(settings.redis_url)
        self.store = EngagementStore(
            self.redis,
            cfg,
            settings.topic_interactions,
            settings.interactions_partitions,
            settings.worker_forgotten_ttl_days * 86_400,
        )
        self.app = self._build_app()
        self.processor = Processor(self.store, self._publish, settings, cfg, self.metrics, self.retrying)
        self.consumer = InteractionsConsumer(settings, self._start_processing, self.processor, self.metrics)
        self.publisher = PublisherLink(
            settings, self.metrics, buckets=self.consumer.partitions, backlog=self.consumer.backlog
        )
        self._started = asyncio.Event()
        self._register()

    def _build_app(self) -> faust.App:
        """faust for the producer, web server, timers and worker lifecycle only (no faust consumer).

        Its id is not the consumer group: even if a faust consumer ever started, it could not join the group
        the interactions consumer, the lag exporter and the tests rely on.
        """
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

    async def _publish(self, topic: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        return await self.app.producer.send(topic, key, value, None, None, None)

    async def _start_processing(self) -> None:
        """Before the first poll: the event-time watermark from Redis (retried while Redis is away)."""
        await self.processor.start()
        self._started.set()
        log.info("engagement worker started", extra={"watermark_ms": self.processor.watermark_ms})

    def _register(self) -> None:
        app = self.app
        s = self.settings
        app.service(self.consumer)
        app.service(self.publisher)

        @app.timer(s.worker_lag_interval_seconds)
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
                    "publisher": "running" if self.publisher.running else "starting",
                    "watermark_ms": self.processor.watermark_ms,
                }
            )

        @app.on_before_shutdown.connect
        async def closing(sender: faust.App, **kwargs: Any) -> None:
            log.info("engagement worker shutting down")
