"""The faust-streaming app: one agent (concurrency 1) taking batches of interaction records, a coalescing
emitter timer, a consumer-lag timer and a /health page on the worker's own faust web port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from services.common.redis_client import connect
from services.engagement.batch import Record
from services.engagement.config import EngagementWorkerSettings, ScoringConfig
from services.engagement.metrics import WorkerMetrics
from services.engagement.processor import Emitter, Processor, Retrying
from services.engagement.store import EngagementStore

log = logging.getLogger(__name__)


class Worker:
    """Composition root of the engagement worker: settings -> faust app, store, processor, emitter."""

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
        self.emitter = Emitter(self.store, self._publish, settings, cfg, self.metrics, self.retrying, self.processor)
        self._started = asyncio.Event()
        self._held: list[Any] = []
        self._register()

    def _build_app(self) -> faust.App:
        s = self.settings
        brokers = ";".join(f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(","))
        return faust.App(
            s.engagement_group_id,
            broker=brokers,
            store="memory://",
            datadir=str(s.worker_data_dir),
            topic_partitions=s.interactions_partitions,
            topic_allow_declare=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset=s.worker_offset_reset,
            broker_commit_every=s.worker_commit_every,
            broker_max_poll_records=s.worker_max_poll_records,
            broker_session_timeout=s.worker_session_timeout_seconds,
            broker_heartbeat_interval=s.worker_heartbeat_seconds,
            broker_rebalance_timeout=s.worker_rebalance_timeout_seconds,
            broker_request_timeout=max(s.worker_session_timeout_seconds + 10, 40.0),
            stream_processing_timeout=s.worker_processing_timeout_seconds,
            stream_buffer_maxsize=max(4 * s.worker_batch_size, 4096),
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

    def assigned_partitions(self) -> list[int]:
        topic = self.settings.topic_interactions
        return sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic)

    def _register(self) -> None:
        app = self.app
        s = self.settings
        topic = app.topic(
            s.topic_interactions, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

        @app.agent(topic, concurrency=1, name="engagement-interactions")
        async def interactions(stream: faust.StreamT) -> None:
            await self._ensure_started()
            batches = stream.take_events(s.worker_batch_size, within=s.worker_batch_seconds)
            async for events in batches:
                records = [
                    Record(
                        e.message.partition,
                        e.message.offset,
                        e.message.key,
                        e.message.value,
                        int((e.message.timestamp or 0) * 1000),
                    )
                    for e in events
                ]
                await self._process(records, batches)

        @app.timer(s.worker_emit_interval_seconds)
        async def emit() -> None:
            if not self._started.is_set():
                return
            try:
                await self.emitter.run_once(self.assigned_partitions())
            except Exception:
                log.exception("emit round failed; retrying next tick")

        @app.timer(s.worker_lag_interval_seconds)
        async def lag() -> None:
            try:
                await self._export_lag()
            except Exception as exc:
                log.warning("consumer lag unavailable: %s", exc)

        @app.page("/health")
        async def health(view: View, request: Request) -> Response:
            return view.json(
                {
                    "status": "ok" if self._started.is_set() else "starting",
                    "partitions": self.assigned_partitions(),
                    "watermark_ms": self.processor.watermark_ms,
                }
            )

        @app.on_before_shutdown.connect
        async def closing(sender: faust.App, **kwargs: Any) -> None:
            log.info("engagement worker shutting down")

    async def _ensure_started(self) -> None:
        if not self._started.is_set():
            await self.processor.start()
            self._started.set()
            log.info("engagement worker started", extra={"watermark_ms": self.processor.watermark_ms})

    async def _process(self, records: list[Record], batches: Any) -> None:
        """Runs one batch to completion even when faust cancels the agent (shutdown, rebalance).

        take_events() acknowledges the batch when the generator resumes or closes; cancelling mid-batch would
        let faust commit offsets whose effects were never written. So the work is shielded and, on
        cancellation, given the shutdown grace to finish; if it still cannot (Redis down), the generator is
        kept referenced so it never closes and the offsets are never acknowledged.
        """
        work = asyncio.ensure_future(self.processor.handle(records))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(asyncio.shield(work), self.settings.shutdown_grace_seconds)
            except (TimeoutError, asyncio.CancelledError):
                self._held.append(batches)
                work.cancel()
                log.warning("batch of %d records left unacknowledged at shutdown", len(records))
            raise

    async def _export_lag(self) -> None:
        """consumer lag = end offset (high water) - committed offset, per assigned partition."""
        assigned = [tp for tp in self.app.consumer.assignment() if tp.topic == self.settings.topic_interactions]
        if not assigned:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.settings.engagement_group_id)
        finally:
            await admin.close()
        highwaters = await self.app.consumer.highwaters(*assigned)
        for tp in assigned:
            end = highwaters.get(tp)
            meta = next((m for t, m in committed.items() if t.topic == tp.topic and t.partition == tp.partition), None)
            if end is None:
                continue
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            self.metrics.lag.labels(str(tp.partition)).set(max(0, end - done))
