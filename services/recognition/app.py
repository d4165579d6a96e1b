"""Composition root: builds the recognition process (consumer, outbox relay, event hub, gRPC server)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from catalyst.recognition.v1 import recognition_pb2_grpc
from grpc_health.v1 import health_pb2
from prometheus_client import REGISTRY, CollectorRegistry

from services.common import redis_client
from services.common.audit import Auditor, KafkaAuditLog
from services.common.auth import verifier_for
from services.common.grpc_server import GrpcService
from services.common.periodic import Periodic
from services.common.policy import load_policy
from services.recognition.audit_service import SERVICE_NAME as AUDIT_SERVICE_NAME
from services.recognition.audit_service import AuditMetrics, AuditProjection, AuditServicer
from services.recognition.audit_store import AuditStore
from services.recognition.calibrator import Calibrator
from services.recognition.config import RecognitionSettings
from services.recognition.consumer import EngagementConsumer
from services.recognition.handlers import Recognition
from services.recognition.metrics import RecognitionMetrics
from services.recognition.programme import load_catalogue
from services.recognition.publisher import OutboxRelay
from services.recognition.rules import Rules, load_rules
from services.recognition.server import SERVICE_NAME, RecognitionServicer
from services.recognition.store import RecognitionStore
from services.recognition.stream import BadgeEventHub

log = logging.getLogger(__name__)


class RecognitionApp:
    """Everything one recognition process runs; `start()` then `stop()` (the order matters, see stop)."""

    def __init__(self, settings: RecognitionSettings, registry: CollectorRegistry = REGISTRY) -> None:
        self.settings = settings
        self.rules: Rules = load_rules(settings.badge_rules_file, settings.scoring_file)
        policy = load_policy(settings.policy_file)
        self.retention = policy.retention
        self.metrics = RecognitionMetrics(registry)
        self.redis = redis_client.connect(settings.redis_url)
        self.store = RecognitionStore(self.redis, self.rules, settings.pseudonym_key, self.retention.erasure_markers)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="catalyst-recognition",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        self.relay = OutboxRelay(
            self.store,
            self.producer,
            settings.topic_recognition,
            self.metrics,
            batch_size=settings.relay_batch_size,
            idle_seconds=settings.relay_idle_seconds,
            backoff_seconds=settings.relay_backoff_seconds,
            lease_seconds=settings.relay_lease_seconds,
        )
        self.recognition = Recognition(
            self.store,
            self.rules,
            self.metrics,
            settings.store_max_retries,
            on_outbox=self.relay.kick,
            calibrator=Calibrator(self.redis, self.rules),
            catalogue=load_catalogue(settings.programme_file),
            min_group_size=policy.visibility.min_group_size,
        )
        self.consumer = EngagementConsumer(
            AIOKafkaConsumer(
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=settings.recognition_group_id,
                client_id="catalyst-recognition",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                max_poll_records=settings.consumer_max_records,
                session_timeout_ms=settings.consumer_session_timeout_ms,
                heartbeat_interval_ms=settings.consumer_heartbeat_ms,
            ),
            self.producer,
            self.recognition,
            self.metrics,
            engagement_topic=settings.topic_engagement,
            interactions_topic=settings.topic_interactions,
            deadletter_topic=settings.topic_deadletter,
            poll_ms=settings.consumer_poll_ms,
            max_records=settings.consumer_max_records,
            retry_max_seconds=settings.redis_retry_max_seconds,
        )
        self.hub = BadgeEventHub(
            AIOKafkaConsumer(
                settings.topic_recognition,
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=None,
                client_id="catalyst-recognition-stream",
                enable_auto_commit=False,
                auto_offset_reset="latest",
            ),
            self.store,
            self.metrics,
            settings.stream_queue_size,
        )
        self.grpc = GrpcService(
            "recognition",
            verifier_for(settings),
            settings.grpc_host,
            settings.grpc_port,
            registry,
        )
        self.sweeper = Periodic("recognition-retention", self._expire, self.retention.sweep_interval.total_seconds())
        self._stopping = False
        self.audit_log = KafkaAuditLog(settings.kafka_bootstrap, settings.topic_audit, "catalyst-recognition-audit")
        self.audit_store = AuditStore(self.redis, self.retention.topics["audit"])
        self.audit_projection = AuditProjection(
            AIOKafkaConsumer(
                settings.topic_audit,
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=settings.audit_group_id,
                client_id="catalyst-recognition-audit",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            ),
            self.audit_store,
            AuditMetrics(registry),
        )
        self.grpc.add(AUDIT_SERVICE_NAME, AuditServicer(self.audit_store).register)
        servicer = RecognitionServicer(self.recognition, self.rules, self.hub, Auditor(self.audit_log, "recognition"))
        self.grpc.add(
            SERVICE_NAME, lambda server: recognition_pb2_grpc.add_RecognitionServiceServicer_to_server(servicer, server)
        )

    @property
    def port(self) -> int:
        return self.grpc.port

    async def start(self) -> None:
        await self.redis.ping()
        await self.recognition.refresh_holder_gauges()
        await self.producer.start()
        await self.relay.start()
        await self.hub.start()
        await self.consumer.start()
        await self.audit_projection.start()
        await self.grpc.start()
        self.sweeper.start()
        for task in (self.consumer.task, self.relay.task, self.audit_projection.task):
            if task is not None:
                task.add_done_callback(self._worker_ended)
        log.info("recognition started with %d badges", len(self.rules.badges))

    async def _expire(self) -> None:
        """Retention: revoked badges past the policy's limit lose their history."""
        expired = await self.recognition.expire_revoked(datetime.now(UTC), self.retention.recognition.revoked_badges)
        if expired:
            log.info("retention removed the history of %d revoked badges", expired)

    def _worker_ended(self, task: asyncio.Task) -> None:
        """A background loop that ends on its own is a fault: report NOT_SERVING so the probe restarts us."""
        if task.cancelled() or self._stopping:
            return
        log.error("%s ended unexpectedly", task.get_name(), exc_info=task.exception())
        for name in (SERVICE_NAME, ""):
            asyncio.get_running_loop().create_task(
                self.grpc.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            )

    async def stop(self) -> None:
        """The retention sweep, then gRPC (health NOT_SERVING, drain calls), then the consumer (commit), then the
        relay (drain the outbox), then the hub, the producer and Redis."""
        self._stopping = True
        await self.sweeper.stop()
        await self.hub.close_streams()
        await self.grpc.stop(self.settings.shutdown_grace_seconds)
        await self.consumer.stop()
        await self.audit_projection.stop()
        await self.audit_log.close()
        await self.relay.stop(self.settings.shutdown_grace_seconds)
        await self.hub.stop()
        await self.producer.stop()
        await self.redis.aclose()
