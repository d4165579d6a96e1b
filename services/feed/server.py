"""Composition root: builds the feed service (store, handlers, gRPC API, outbox relay) from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry

from services.common.auth import verifier_for
from services.common.grpc_server import GrpcService, run_until_signalled, serve_metrics
from services.common.periodic import Periodic
from services.common.policy import load_policy
from services.common.redis_client import connect
from services.feed.api import SERVICE_NAME, FeedServicer
from services.feed.config import FeedSettings
from services.feed.domain import Limits
from services.feed.handlers import FeedHandlers, wall_clock_ms
from services.feed.ingest_store import IngestStore
from services.feed.outbox import OutboxRelay
from services.feed.prelaunch_api import SERVICE_NAME as PRELAUNCH_SERVICE
from services.feed.prelaunch_api import PreLaunchServicer
from services.feed.prelaunch_handlers import PreLaunch
from services.feed.prelaunch_store import SessionRegistry
from services.feed.relay import build_relay
from services.feed.retention import RetentionSweep
from services.feed.store import FeedStore

log = logging.getLogger(__name__)


def limits_from(settings: FeedSettings) -> Limits:
    names = Limits.__dataclass_fields__.keys()
    return Limits(**{name: getattr(settings, name) for name in names if hasattr(settings, name)})


@dataclass
class FeedService:
    """Everything one feed process runs; `start()` and `stop()` are what SIGTERM handling calls."""

    settings: FeedSettings
    grpc: GrpcService
    relay: OutboxRelay | None
    handlers: FeedHandlers
    store: FeedStore
    retention: Periodic

    @property
    def port(self) -> int:
        return self.grpc.port

    async def start(self) -> None:
        await self.grpc.start()
        if self.relay is not None:
            await self.relay.start()
        self.retention.start()

    async def stop(self) -> None:
        """Stop the retention sweep and taking calls, let in-flight ones finish, drain the relay, close Redis."""
        await self.retention.stop()
        await self.grpc.stop(self.settings.shutdown_grace_seconds)
        if self.relay is not None:
            await self.relay.drain(self.settings.relay_drain_seconds)
        await self.store.redis.aclose()


def build(settings: FeedSettings, registry: CollectorRegistry = REGISTRY) -> FeedService:
    redis = connect(settings.redis_url)
    store = FeedStore(redis, settings.outbox_partitions, settings.store_max_retries)
    relay = build_relay(settings, redis, registry) if settings.relay_enabled else None
    sessions = SessionRegistry(redis)
    handlers = FeedHandlers(
        store,
        IngestStore(redis, settings.outbox_partitions, settings.store_max_retries),
        limits_from(settings),
        sessions,
        ingest_max_future_ms=settings.ingest_max_future_seconds * 1000,
        max_comments_shown=settings.max_comments_shown,
    )
    grpc_service = GrpcService("feed", verifier_for(settings), settings.grpc_host, settings.grpc_port, registry)
    grpc_service.add(SERVICE_NAME, FeedServicer(handlers).register)
    prelaunch = PreLaunch(store, sessions, limits_from(settings), wall_clock_ms)
    grpc_service.add(PRELAUNCH_SERVICE, PreLaunchServicer(prelaunch).register)
    retention = load_policy(settings.policy_file).retention
    sweep = RetentionSweep(handlers, retention.feed, registry)
    periodic = Periodic("feed-retention", sweep.run, retention.sweep_interval.total_seconds())
    return FeedService(settings, grpc_service, relay, handlers, store, periodic)


async def main(settings: FeedSettings) -> None:
    service = build(settings)
    serve_metrics(settings.metrics_host, settings.metrics_port)
    log.info(
        "feed starting",
        extra={"grpc_port": service.port, "metrics_port": settings.metrics_port, "relay": settings.relay_enabled},
    )
    await run_until_signalled([service.start], [service.stop])
