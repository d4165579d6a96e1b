"""Drives a real recognition process (in this event loop) through real Kafka topics, Redis and gRPC."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import grpc
import yaml
from catalyst.events.v1 import envelope_pb2, scores_pb2
from catalyst.recognition.v1 import recognition_pb2_grpc
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from services.common.audit import PURPOSE_KEY
from services.common.auth import Role
from services.common.consumer_lag import KafkaOffsets
from services.common.grpc_client import bearer
from services.common.local_issuer import LocalIssuer
from services.engagement.model.config import DEFAULT_SCORING_FILE, load_model
from services.engagement.model.distribution import distribution
from services.engagement.publisher.publisher import DISTRIBUTION_KEY, figures_distribution
from services.recognition.app import RecognitionApp
from services.recognition.calibrator import DISTRIBUTIONS_KEY
from services.recognition.config import RecognitionSettings
from services.recognition.store import RecognitionStore, events_key, outbox_key, state_key
from tests.conftest import trusted_issuer

T = TypeVar("T")
COMPONENTS = ("content", "conversation", "reach", "helpfulness", "innovation", "profile", "pilot", "total")


MECHANICS_RULES = Path(__file__).resolve().parents[1] / "mechanics_badges.yaml"


def calibrated_rules(directory: Path) -> Path:
    """The mechanics rules with Helper bronze calibrated (decision 0019): what the top 30 % of active colleagues
    answer (the top half to keep), at least 3 (2)."""
    rules = yaml.safe_load(MECHANICS_RULES.read_text())
    rules["calibration"] = {"period_days": 7}
    (criterion,) = rules["badges"]["helper"]["tiers"]["bronze"]["criteria"]
    criterion["percentile"] = {"grant": 70, "keep": 50}
    path = directory / "calibrated_badges.yaml"
    path.write_text(yaml.safe_dump(rules))
    return path


def small_company_scoring(directory: Path) -> Path:
    """The shipped scoring file, with five active colleagues enough for a company distribution (the tests' small
    companies; the shipped minimum is 30)."""
    scoring = yaml.safe_load(DEFAULT_SCORING_FILE.read_text())
    scoring["distribution"]["min_population"] = 5
    path = directory / "small_company_scoring.yaml"
    path.write_text(yaml.safe_dump(scoring))
    return path


def settings_for(common_env: dict[str, str], group: str | None = None, **extra: object) -> RecognitionSettings:
    extra.setdefault("badge_rules_file", MECHANICS_RULES)
    return RecognitionSettings(
        kafka_bootstrap=common_env["CATALYST_KAFKA_BOOTSTRAP"],
        redis_url=common_env["CATALYST_REDIS_URL"],
        topic_interactions=common_env["CATALYST_TOPIC_INTERACTIONS"],
        topic_engagement=common_env["CATALYST_TOPIC_ENGAGEMENT"],
        topic_recognition=common_env["CATALYST_TOPIC_RECOGNITION"],
        topic_deadletter=common_env["CATALYST_TOPIC_DEADLETTER"],
        topic_audit=common_env["CATALYST_TOPIC_AUDIT"],
        audit_group_id=f"audit-test-{uuid.uuid4().hex[:8]}",
        recognition_group_id=group or f"recognition-test-{uuid.uuid4().hex[:8]}",
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        consumer_poll_ms=100,
        consumer_session_timeout_ms=10_000,
        relay_idle_seconds=0.05,
        shutdown_grace_seconds=2,
        **extra,
    )


def score_changed(
    employee: str,
    version: int,
    at: datetime,
    signals: dict[str, float],
    department: str = "d1",
    windows: dict[str, dict[str, float]] | None = None,
    ranking_opt_out: bool = False,
) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope(
        event_id=f"score-{employee}-{version}",
        producer="engagement",
        type="catalyst.events.v1.ScoreChanged",
        employee_id=employee,
        department_id=department,
    )
    env.occurred_at.FromDatetime(at)
    sc = env.score_changed
    sc.employee_id, sc.department_id, sc.version, sc.ranking_opt_out = employee, department, version, ranking_opt_out
    for name, value in signals.items():
        sc.signals[name] = value
    for window, components in (windows or {}).items():
        sc.windows[window].CopyFrom(scores_pb2.ComponentScores(**components))
    return env


def distribution_of(day: int, everyone: list[dict[str, float]], min_population: int = 5) -> bytes:
    """The company's distribution of a day as engagement's publisher sends it (decision 0025); five active
    colleagues are enough to compare."""
    rule = load_model().distribution.model_copy(update={"min_population": min_population})
    return figures_distribution(distribution(day, everyone, rule))


def registered(
    employee: str, department: str, name: str, at: datetime, is_manager: bool = False
) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope(
        event_id=f"reg-{employee}-{department}",
        producer="feed",
        type="catalyst.events.v1.EmployeeRegistered",
        employee_id=employee,
        department_id=department,
    )
    env.occurred_at.FromDatetime(at)
    env.employee_registered.display_name = name
    env.employee_registered.is_manager = is_manager
    return env


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.1)


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record currently in the topic, as (key, value), in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 20
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((r.key, r.value) for r in batch)
        return records
    finally:
        consumer.close()


@dataclass
class Harness:
    app: RecognitionApp
    common_env: dict[str, str]
    producer: KafkaProducer
    channel: grpc.aio.Channel
    stub: recognition_pb2_grpc.RecognitionServiceStub
    registry: CollectorRegistry
    offsets: KafkaOffsets
    authority: LocalIssuer = field(default_factory=trusted_issuer)

    @property
    def store(self) -> RecognitionStore:
        return self.app.store

    @property
    def bootstrap(self) -> str:
        return self.common_env["CATALYST_KAFKA_BOOTSTRAP"]

    @property
    def topics(self) -> dict[str, str]:
        return {
            "engagement": self.common_env["CATALYST_TOPIC_ENGAGEMENT"],
            "interactions": self.common_env["CATALYST_TOPIC_INTERACTIONS"],
            "recognition": self.common_env["CATALYST_TOPIC_RECOGNITION"],
            "deadletter": self.common_env["CATALYST_TOPIC_DEADLETTER"],
        }

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of this process's registry (0 when absent); async so `eventually` can poll it."""
        return self.registry.get_sample_value(name, labels) or 0.0

    async def lag(self) -> int:
        """Records on the input topics this process's group has not committed (Kafka's view, not ours)."""
        group = self.app.settings.recognition_group_id
        watched = {group: [self.topics["engagement"], self.topics["interactions"]]}
        snapshot = await asyncio.to_thread(self.offsets.read, [], watched)
        return sum(p.lag for p in snapshot.lags)

    async def sweep_behind(self) -> bool:
        """Whether the revocation sweep has yet to reach the newest ScoreChanged time the consumer saw."""
        watermark = self.app.consumer.watermark
        return watermark is not None and await self.metric("recognition_revocation_clock_seconds") != (
            watermark.timestamp()
        )

    async def outbox_depth(self) -> int:
        """Records written but not yet acknowledged by Kafka, over every employee's outbox."""
        redis = self.store.redis
        return sum([await redis.llen(key) async for key in redis.scan_iter(match=outbox_key("*"))])

    async def settled(self) -> None:
        """Waits for the facts that end this process's work on everything produced so far, in the order they
        happen: its group committed every input record (each evaluated and its outcome stored), the revocation
        sweep reached the newest event time, and every outbox drained onto the topic. Only then may a test
        assert that something did not happen."""
        await eventually(self.lag, lambda lag: lag == 0)
        await eventually(self.sweep_behind, lambda behind: not behind)
        await eventually(self.outbox_depth, lambda depth: depth == 0)

    async def redis_keys(self, employee: str) -> list[str]:
        """The per-employee keys that exist (state, event ids, outbox)."""
        keys = [state_key(employee), events_key(employee), outbox_key(employee)]
        return [k for k in keys if await self.store.redis.exists(k)]

    def token(self, subject: str, *roles: Role, purpose: str = "integration test") -> tuple[tuple[str, str], ...]:
        """Metadata of a call: the bearer token and, unless empty, the purpose of a look-up."""
        metadata = bearer(self.authority.mint(subject, list(roles) or [Role.EMPLOYEE]))
        return (*metadata, (PURPOSE_KEY, purpose)) if purpose else metadata

    async def produce(self, topic_key: str, key: str, value: bytes | None) -> None:
        topic = self.topics[topic_key]
        await asyncio.to_thread(lambda: self.producer.send(topic, key=key.encode(), value=value).get(timeout=30))

    async def scores(self, env: envelope_pb2.Envelope) -> None:
        await self.produce("engagement", env.employee_id, env.SerializeToString())

    async def scores_applied(self, env: envelope_pb2.Envelope) -> None:
        """Produces a ScoreChanged and waits until recognition stored its version."""
        await self.scores(env)
        version = env.score_changed.version
        await eventually(lambda: self.store.load(env.employee_id), lambda r: r.version >= version)

    async def distribution_recorded(self, value: bytes) -> None:
        """Sends a day's distribution to every partition of the engagement topic, as the publisher does, and waits
        until recognition kept it."""
        topic = self.topics["engagement"]

        def send() -> None:
            for partition in sorted(self.producer.partitions_for(topic)):
                self.producer.send(topic, key=DISTRIBUTION_KEY, value=value, partition=partition).get(timeout=30)

        await asyncio.to_thread(send)
        day = str(envelope_pb2.Envelope.FromString(value).figures_distribution.day)
        await eventually(lambda: self.store.redis.hexists(DISTRIBUTIONS_KEY, day), bool)

    async def register(self, employee: str, department: str, name: str, at: datetime, manager: bool = False) -> None:
        env = registered(employee, department, name, at, manager)
        await self.produce("interactions", employee, env.SerializeToString())

    async def recognition_events(self) -> list[envelope_pb2.Envelope | None]:
        records = await asyncio.to_thread(read_topic, self.bootstrap, self.topics["recognition"])
        out: list[envelope_pb2.Envelope | None] = []
        for _, value in records:
            if value is None:
                out.append(None)
            else:
                out.append(envelope_pb2.Envelope.FromString(value))
        return out

    async def events_of(self, kind: str, count: int, employee: str | None = None) -> list[envelope_pb2.Envelope]:
        """The events of a kind on the topic once this process has settled; exactly `count` of them."""
        await self.settled()
        found = [
            e
            for e in await self.recognition_events()
            if e is not None and e.WhichOneof("payload") == kind and (employee is None or e.employee_id == employee)
        ]
        assert len(found) == count, [f"{e.employee_id}:{e.WhichOneof('payload')}" for e in found]
        return found


async def start_harness(common_env: dict[str, str], settings: RecognitionSettings | None = None) -> Harness:
    registry = CollectorRegistry()
    app = RecognitionApp(settings or settings_for(common_env), registry)
    await app.start()
    producer = await asyncio.to_thread(
        KafkaProducer, bootstrap_servers=common_env["CATALYST_KAFKA_BOOTSTRAP"], acks="all", linger_ms=0
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    stub = recognition_pb2_grpc.RecognitionServiceStub(channel)
    offsets = KafkaOffsets(common_env["CATALYST_KAFKA_BOOTSTRAP"], timeout_ms=5_000)
    return Harness(app, common_env, producer, channel, stub, registry, offsets)


async def stop_harness(h: Harness) -> None:
    await asyncio.to_thread(h.offsets.reset)
    await h.channel.close()
    await asyncio.to_thread(h.producer.close)
    await h.app.stop()
