"""Helpers for feed integration tests: a running feed service, tokens, and a topic reader."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
from aiokafka import AIOKafkaConsumer
from catalyst.events.v1 import envelope_pb2
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc, prelaunch_pb2, prelaunch_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.local_issuer import LocalIssuer
from services.feed.config import FeedSettings
from services.feed.server import FeedService, build
from tests.conftest import trusted_issuer


def feed_settings(redis_url: str, bootstrap: str, topic: str, **overrides: object) -> FeedSettings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "kafka_bootstrap": bootstrap,
        "topic_interactions": topic,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "metrics_port": 0,
        "relay_idle_seconds": 0.05,
        "relay_backoff_seconds": 0.3,
        "relay_drain_seconds": 15,
        "shutdown_grace_seconds": 1,
        "outbox_partitions": 4,
    }
    values.update(overrides)
    return FeedSettings(**values)


@dataclass
class Feed:
    """A feed service on a real socket plus a client stub."""

    service: FeedService
    settings: FeedSettings
    registry: CollectorRegistry
    channel: grpc.aio.Channel
    stub: feed_pb2_grpc.FeedServiceStub
    authority: LocalIssuer = field(default_factory=trusted_issuer)

    def token(self, subject: str, *roles: Role, ttl: int = 600) -> str:
        return self.authority.mint(subject, list(roles) or [Role.EMPLOYEE], ttl)

    def auth(self, subject: str, *roles: Role) -> tuple[tuple[str, str]]:
        return bearer(self.token(subject, *roles))

    async def call(self, method: str, request: object, subject: str = "e-1", *roles: Role) -> object:
        return await getattr(self.stub, method)(request, metadata=self.auth(subject, *roles), timeout=30)

    async def prelaunch(self, method: str, request: object, subject: str = "po-1", *roles: Role) -> object:
        """A PreLaunchService call, by default as the programme owner po-1."""
        stub = prelaunch_pb2_grpc.PreLaunchServiceStub(self.channel)
        metadata = self.auth(subject, *(roles or (Role.PROGRAMME_OWNER,)))
        return await getattr(stub, method)(request, metadata=metadata, timeout=30)

    async def session(
        self, session_id: str, type_: int, pre_launch: bool = True, departments: tuple[str, ...] = ()
    ) -> None:
        """Registers a session that runs from an hour ago to an hour from now, organised by po-1."""
        session = prelaunch_pb2.Session(
            session_id=session_id, type=type_, title=f"Session {session_id}", pre_launch=pre_launch
        )
        session.department_ids.extend(departments)
        now_ms = time.time_ns() // 1_000_000
        session.starts_at.FromMilliseconds(now_ms - 3_600_000)
        session.ends_at.FromMilliseconds(now_ms + 3_600_000)
        await self.prelaunch("RegisterSession", prelaunch_pb2.RegisterSessionRequest(session=session))

    async def directory(self, *rows: tuple[str, str, str]) -> int:
        employees = [feed_pb2.Employee(employee_id=e, display_name=n, department_id=d) for e, n, d in rows]
        response = await self.call(
            "UpsertEmployees", feed_pb2.UpsertEmployeesRequest(employees=employees), "hr-1", Role.HR
        )
        return response.upserted

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


async def start_feed(settings: FeedSettings) -> Feed:
    registry = CollectorRegistry()
    service = build(settings, registry)
    await service.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    return Feed(service, settings, registry, channel, feed_pb2_grpc.FeedServiceStub(channel), trusted_issuer())


async def stop_feed(feed: Feed) -> None:
    await feed.channel.close()
    await feed.service.stop()


@dataclass(frozen=True)
class Record:
    key: str
    partition: int
    offset: int
    envelope: envelope_pb2.Envelope
    raw: bytes


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 60, settle: float = 1.5
) -> list[Record]:
    """Reads the topic from the start until `expected` records arrived, then `settle` seconds more
    (so duplicates would show). Records come back per partition in offset order."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if len(records) >= expected and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            batch = await consumer.getmany(timeout_ms=300)
            for tp, messages in batch.items():
                for m in messages:
                    env = envelope_pb2.Envelope.FromString(m.value)
                    records.append(Record(m.key.decode(), tp.partition, m.offset, env, m.value))
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r.partition, r.offset))
    return records


async def wait_for(predicate: object, timeout: float = 30, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
