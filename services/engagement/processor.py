"""The worker's loop bodies, independent of faust: apply one batch, publish coalesced score changes.

Neither ever raises for a transient fault: Redis and Kafka calls are retried with capped backoff inside
the loop (an exception in a faust agent would acknowledge, and so lose, the batch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiokafka.errors import KafkaError
from catalyst.events.v1 import envelope_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from redis.exceptions import BusyLoadingError, ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.engagement.batch import Plan, Record, plan
from services.engagement.config import EngagementWorkerSettings, ScoringConfig
from services.engagement.metrics import WorkerMetrics
from services.engagement.scoring import DAY_MS, figures
from services.engagement.store import EngagementStore

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ClusterDownError, TryAgainError, OSError)
CONSUMER = "engagement"
SCORE_CHANGED = "catalyst.events.v1.ScoreChanged"
FIGURES_PER_YIELD = 8  # employees' figures computed between two releases of the event loop (~1-2 ms)
LATENCY_SAMPLES = 50  # latency samples per batch (observing every record would cost more than it tells)

# (topic, key, value or None for a tombstone) -> an awaitable that resolves once the broker acknowledged.
Publish = Callable[[str, bytes, bytes | None], Awaitable[Awaitable[object]]]


def reason_label(reason: str) -> str:
    if reason.startswith("undecodable") or reason.startswith("empty"):
        return "undecodable"
    if reason.startswith("unknown event type"):
        return "unknown_type"
    return "invalid"


class Retrying:
    """Runs an async operation until it succeeds, backing off (capped) on transient faults."""

    def __init__(self, metrics: WorkerMetrics, max_backoff: float) -> None:
        self.metrics = metrics
        self.max_backoff = max_backoff

    async def redis(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        delay = 0.05
        while True:
            started = time.perf_counter()
            try:
                result = await call()
            except TRANSIENT as exc:
                self.metrics.redis_retries.labels(op).inc()
                log.warning("redis %s failed (%s); retrying in %.2fs", op, exc, delay)
            else:
                self.metrics.redis_latency.labels(op).observe(time.perf_counter() - started)
                return result
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def kafka(self, topic: str, publish: Callable[[], Awaitable[None]]) -> None:
        delay = 0.1
        while True:
            try:
                await publish()
                return
            except (KafkaError, TimeoutError, OSError) as exc:
                self.metrics.kafka_retries.labels(topic).inc()
                log.warning("publish to %s failed (%s); retrying in %.2fs", topic, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)


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
                consumer=CONSUMER,
                failed_at=failed_at,
            )
            log.warning(
                "dead letter",
                extra={"partition": record.partition, "offset": record.offset, "reason": reason},
            )
            pending.append((record.key or b"", letter.SerializeToString()))
            self.metrics.dead_letters.labels(reason_label(reason)).inc()

        async def send_all() -> None:
            acks = [await self.publish(topic, key, value) for key, value in pending]
            await asyncio.gather(*acks)

        await self.retrying.kafka(topic, send_all)

    async def _forget(self, employee: str) -> None:
        windows = self.cfg.leaderboards.windows
        await self.retrying.redis("forget", lambda: self.store.forget(employee, windows))
        topic = self.settings.topic_engagement

        async def tombstone() -> None:
            await (await self.publish(topic, employee.encode(), None))

        await self.retrying.kafka(topic, tombstone)
        self.metrics.tombstones.inc()
        await self.retrying.redis("forget", lambda: self.store.forget_done(employee))
        log.info("employee forgotten", extra={"employee_id": employee})


def score_changed(
    employee: str, department: str, opt_out: bool, version: int, windows: dict, signals: dict, occurred_ms: int
) -> envelope_pb2.Envelope:
    """The ScoreChanged envelope, built in one constructor call (upb converts the nested dicts natively,
    cheaper than filling and copying one message per window)."""
    return envelope_pb2.Envelope(
        event_id=f"engagement:{employee}:{version}",
        occurred_at={"seconds": occurred_ms // 1000, "nanos": occurred_ms % 1000 * 1_000_000},
        producer=CONSUMER,
        type=SCORE_CHANGED,
        employee_id=employee,
        department_id=department,
        score_changed={
            "employee_id": employee,
            "department_id": department,
            "ranking_opt_out": opt_out,
            "version": version,
            "windows": windows,
            "signals": signals,
        },
    )


class Emitter:
    """Publishes coalesced ScoreChanged events for the dirty employees of the buckets this worker owns.

    ScoreChanged is compacted (only the newest figures of an employee matter), so while the consumer is far
    behind the end of its partitions (a backfill, a restart after downtime) publishing waits: a round runs
    at most every `worker_emit_catchup_interval_seconds`, and the day-rollover re-marking, which would
    re-publish every active employee once per day of history, runs only once caught up, for that day.
    """

    def __init__(
        self,
        store: EngagementStore,
        publish: Publish,
        settings: EngagementWorkerSettings,
        cfg: ScoringConfig,
        metrics: WorkerMetrics,
        retrying: Retrying,
        processor: Processor,
        *,
        backlog: Callable[[], int] = lambda: 0,
        idle: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.publish = publish
        self.settings = settings
        self.cfg = cfg
        self.metrics = metrics
        self.retrying = retrying
        self.processor = processor
        self.backlog = backlog  # records behind the partitions' ends: 0 caught up, -1 not known yet
        self.idle = idle  # True while the consumer has nothing to do (its last poll was empty, no batch in flight)
        self.clock = clock  # monotonic seconds; the unit tests drive their own
        self.budget = settings.worker_emit_interval_seconds * settings.worker_emit_budget_share
        self._rolled: dict[int, int] = {}
        self._next_catchup_round = float("-inf")

    def catching_up(self) -> bool:
        """True while the consumer is further behind than a few batches (or does not know yet)."""
        backlog = self.backlog()
        return backlog < 0 or backlog > self.settings.worker_emit_catchup_backlog

    async def run_once(self, buckets: Sequence[int]) -> int:
        """One coalescing round over the given buckets; returns how many ScoreChanged were published.

        Work per call is bounded by a time budget (a share of the emit interval) and done in small chunks
        with the event loop released in between, so that publishing never starves the consumer: under load,
        more changes simply coalesce into each published figure. A rollover's re-publication is spread over
        the following rounds the same way. While the consumer is idle (its last poll found no record and no
        batch is in flight: a batch awaiting Redis would wait for every chunk run meanwhile) the round goes on
        past its budget: idle time is free, and the next record waits for one chunk at most.
        """
        watermark_ms = self.processor.watermark_ms
        if watermark_ms <= 0 or not buckets:
            return 0
        now = self.clock()
        catching_up = self.catching_up()
        self.metrics.emit_catching_up.set(1 if catching_up else 0)
        if catching_up:
            if now < self._next_catchup_round:
                return 0
            self._next_catchup_round = now + self.settings.worker_emit_catchup_interval_seconds
        else:
            await self._rollover(buckets, watermark_ms // DAY_MS)
        published = 0
        deadline = now + self.budget
        pending = list(buckets)
        while pending and self._may_go_on(deadline):
            for bucket in list(pending):
                count, full = await self._round(bucket, watermark_ms)
                published += count
                if not full:
                    pending.remove(bucket)
                await asyncio.sleep(0)  # let a waiting batch run between chunks
                if not self._may_go_on(deadline):
                    break
        return published

    def _may_go_on(self, deadline: float) -> bool:
        return self.clock() < deadline or self.idle()

    async def _rollover(self, buckets: Sequence[int], day: int) -> None:
        """Marks dirty the employees whose windows move on `day` (once per bucket and day reached)."""
        for bucket in buckets:
            if self._rolled.get(bucket, -1) < day:
                marked = await self.retrying.redis("rollover", lambda b=bucket: self.store.rollover(b, day))
                self.metrics.rollover_marked.inc(marked)
                self._rolled[bucket] = day

    async def _round(self, bucket: int, watermark_ms: int) -> tuple[int, bool]:
        chunk = self.settings.worker_emit_chunk
        entries = await self.retrying.redis("emit", lambda: self.store.dirty(bucket, chunk))
        if not entries:
            return 0, False
        employees = [e for e, _ in entries]
        states = await self.retrying.redis("emit", lambda: self.store.read_states(employees))
        day = watermark_ms // DAY_MS
        topic = self.settings.topic_engagement
        messages: list[tuple[bytes, bytes]] = []
        boards = []
        for i, employee in enumerate(employees):
            if i % FIGURES_PER_YIELD == 0:
                await asyncio.sleep(0)  # parsing and figures of a whole chunk would hold the loop ~10 ms
            state = states[employee]
            if state is None:
                continue
            as_of = max(state.as_of_day, day)
            figs = figures(state, as_of, self.cfg)
            version = (as_of << 32) | state.changes
            occurred = max(watermark_ms, as_of * DAY_MS)
            env = score_changed(
                employee, state.department, state.opt_out, version, figs.windows, figs.signals, occurred
            )
            messages.append((employee.encode(), env.SerializeToString()))
            totals = {w: figs.windows[w]["total"] for w in self.cfg.leaderboards.windows}
            boards.append((employee, state.department, state.opt_out, state.as_of_day, totals))

        async def send_all() -> None:
            acks = [await self.publish(topic, key, value) for key, value in messages]
            await asyncio.gather(*acks)

        if messages:
            await self.retrying.kafka(topic, send_all)
        await self.retrying.redis("emit", lambda: self.store.published(bucket, entries, boards))
        self.metrics.score_changes.inc(len(messages))
        return len(messages), len(entries) >= chunk
