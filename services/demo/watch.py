"""Follows the event topics during the run: badge events (for the live view and the report) and how much
the engagement and recognition services have processed (to know when the pipeline has settled)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from catalyst.events.v1 import badges_pb2, envelope_pb2
from google.protobuf.message import DecodeError

from services.common.consumer_lag import KafkaOffsets
from services.demo.evaluation import Grant

log = logging.getLogger(__name__)


def tier_name(tier: int) -> str:
    return badges_pb2.Tier.Name(tier).removeprefix("TIER_").lower()


@dataclass
class BadgeBoard:
    """What the badge events said so far."""

    grants: list[Grant] = field(default_factory=list)
    tiers: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    departments: dict[str, str] = field(default_factory=dict)
    granted: Counter[str] = field(default_factory=Counter)
    revoked: Counter[str] = field(default_factory=Counter)
    recent: list[str] = field(default_factory=list)
    score_events: int = 0

    def apply(self, env: envelope_pb2.Envelope) -> None:
        kind = env.WhichOneof("payload")
        at = env.occurred_at.ToDatetime(dt.UTC)
        if kind == "badge_granted":
            badge = env.badge_granted.badge
            tier = tier_name(env.badge_granted.tier)
            self.grants.append(Grant(env.employee_id, badge, tier, at))
            self.tiers[env.employee_id].add((badge, tier))
            self.departments[env.employee_id] = env.department_id
            self.granted[badge] += 1
            self.recent = [*self.recent[-7:], f"{at:%Y-%m-%d} {env.employee_id} ({env.department_id}): {badge}"]
        elif kind == "badge_revoked":
            self.tiers[env.employee_id].discard((env.badge_revoked.badge, tier_name(env.badge_revoked.tier)))
            self.revoked[env.badge_revoked.badge] += 1

    @property
    def holdings(self) -> dict[str, set[str]]:
        """Badges each employee holds in at least one tier (a revoked tier leaves the others standing)."""
        return {employee: {badge for badge, _ in held} for employee, held in self.tiers.items() if held}

    def ambassadors_by_department(self, badge: str) -> Counter[str]:
        return Counter(self.departments.get(e, "?") for e, badges in self.holdings.items() if badge in badges)


class TopicWatcher:
    """Reads catalyst.recognition.v1 and counts catalyst.engagement.v1 from the offsets current at start."""

    def __init__(self, bootstrap: str, recognition_topic: str, engagement_topic: str) -> None:
        self.board = BadgeBoard()
        self._bootstrap = bootstrap
        self._topics = (recognition_topic, engagement_topic)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        partitions = [TopicPartition(t, p) for t in self._topics for p in await topic_partitions(self._bootstrap, t)]
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await self._consumer.start()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        recognition, _ = self._topics
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic != recognition:
                        self.board.score_events += 1
                    elif record.value is not None:
                        try:
                            self.board.apply(envelope_pb2.Envelope.FromString(record.value))
                        except DecodeError:
                            log.warning("undecodable record on %s at %d", tp, record.offset)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in description["partitions"])
    finally:
        await admin.close()


async def group_lag(bootstrap: str, groups: dict[str, str]) -> dict[str, int]:
    """Records not yet committed by each consumer group on its topic ({group: topic} -> {group: lag})."""
    offsets = KafkaOffsets(bootstrap, timeout_ms=10_000)
    try:
        snap = await asyncio.to_thread(offsets.read, [], {group: [topic] for group, topic in groups.items()})
    finally:
        offsets.reset()
    lags = dict.fromkeys(groups, 0)
    for lag in snap.lags:
        lags[lag.group] += lag.lag
    return lags
