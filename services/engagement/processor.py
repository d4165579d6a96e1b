"""The consumer's loop body, independent of faust and aiokafka: plan and apply one batch.

It never raises for a transient fault: Redis and Kafka calls are retried with capped backoff inside the loop
(an exception would lose the batch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from catalyst.events.v1 import envelope_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.engagement.batch import Plan, Record, plan
from services.engagement.config import EngagementWorkerSettings, ScoringConfig
from services.engagement.metrics import WorkerMetrics
from services.engagement.publish import PRODUCER, Publish, publish_all
from services.engagement.retrying import Retrying
from services.engagement.store import EngagementStore

log = logging.getLogger(__name__)
LATENCY_SAMPLES = 50  # latency samples per batch (observing every record would cost more than it tells)


def reason_label(reason: str) -> str:
    if reason.startswith("undecodable") or reason.startswith("empty"):
        return "undecodable"
    if reason.startswith("unknown event type"):
        return "unknown_type"
    return "invalid"


@dataclass(frozen=True)
class Planned:
    """A planned batch waiting for its turn to be written."""

    records: Sequence[Record]
    work: Plan
    seconds: float  # planning took


class Processor:
    """Applies one batch of records: dead letters, forgets, one store round trip."""

    def __init__(
        self,
        store: EngagementStore,
        publish: Publish,
        settings: EngagementWorkerSettings,
        cfg: ScoringConfig,
        metrics: WorkerMetrics,
        retrying: Retrying,
    ) -> None:
        self.store = store
        self.publish = publish
        self.settings = settings
        self.cfg = cfg
        self.metrics = metrics
        self.retrying = retrying
        self.max_future_ms = int(cfg.limits.max_future_skew_hours * 3_600_000)
        self.watermark_ms = 0

    async def start(self) -> None:
        self.watermark_ms = await self.retrying.redis("watermark", self.store.watermark)

    def plan(self, records: Sequence[Record]) -> Planned:
        """The batch's pure part (decode, validate, map to ops): the consumer runs it for the next batch while
        Redis still executes the writes of the one before."""
        started = time.perf_counter()
        work = plan(records, int(time.time() * 1000), self.max_future_ms)
        return Planned(records, work, time.perf_counter() - started)

    def assigned(self, partitions: Sequence[int]) -> None:
        self.store.assign(partitions)

    def revoked(self, partitions: Sequence[int]) -> None:
        self.store.release(partitions)

    async def apply(self, planned: Planned) -> None:
        """Dead letters, forgets and the store's write, in that order; returns once Redis confirmed."""
        started = time.perf_counter()
        records, work = planned.records, planned.work
        self.metrics.batch_size.observe(len(records))
        for name, count in work.kinds.items():
            self.metrics.events.labels(name).inc(count)
        if work.dead:
            await self._dead_letters(work.dead)
        for employee in work.forget:
            await self._forget(employee)
        if work.newest_ms > self.watermark_ms:
            self.watermark_ms = work.newest_ms
            self.metrics.watermark.set(work.newest_ms / 1000)
        if work.ops or work.activity:
            result = await self.retrying.redis(
                "apply", lambda: self.store.apply(work.ops, work.activity, work.newest_ms)
            )
            self.metrics.duplicates.inc(result.duplicates)
            self.metrics.late_ignored.inc(result.late)
            self.metrics.superseded.inc(result.superseded)
            self.metrics.slice_writes.inc(result.slices)
        now = time.time()
        self.metrics.batch_seconds.observe(planned.seconds + time.perf_counter() - started)
        step = max(1, len(records) // LATENCY_SAMPLES)
        for record in records[::step]:
            self.metrics.event_to_score.observe(max(0.0, now - record.timestamp_ms / 1000))

    async def _dead_letters(self, dead: Sequence[tuple[Record, str]]) -> None:
        topic = self.settings.topic_deadletter
        failed_at = Timestamp()
        failed_at.GetCurrentTime()
        pending = []
        for record, reason in dead:
            letter = envelope_pb2.DeadLetter(
                source_topic=self.settings.topic_interactions,
                source_partition=record.partition,
                source_offset=record.offset,
                key=record.key or b"",
                value=record.value or b"",
                reason=reason,
                consumer=PRODUCER,
                failed_at=failed_at,
            )
            log.warning(
                "dead letter",
                extra={"partition": record.partition, "offset": record.offset, "reason": reason},
            )
            pending.append((record.key or b"", letter.SerializeToString()))
            self.metrics.dead_letters.labels(reason_label(reason)).inc()

        await self.retrying.kafka(topic, lambda: publish_all(self.publish, topic, pending))

    async def _forget(self, employee: str) -> None:
        windows = self.cfg.leaderboards.windows
        await self.retrying.redis("forget", lambda: self.store.forget(employee, windows))
        topic = self.settings.topic_engagement

        await self.retrying.kafka(topic, lambda: publish_all(self.publish, topic, [(employee.encode(), None)]))
        self.metrics.tombstones.inc()
        await self.retrying.redis("forget", lambda: self.store.forget_done(employee))
        log.info("employee forgotten", extra={"employee_id": employee})
