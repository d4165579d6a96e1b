"""One batch of interaction records: decoded and checked, mapped to merges (pure `plan`), then written
(`Handler.apply`): dead letters first, erasures, then one store write. It never raises for a transient fault:
Redis and Kafka calls are retried with capped backoff (an exception would lose the batch)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from services.common.dead_letters import dead_letter
from services.engagement.adapters.redis_store import Prepared, RedisStore, Writes
from services.engagement.adapters.retrying import Retrying
from services.engagement.model.config import ScoringModel
from services.engagement.model.effects import effects, moves_clock
from services.engagement.model.state import Op
from services.engagement.model.validation import KIND, Invalid, check, decode
from services.engagement.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)
PRODUCER = "engagement"
LATENCY_SAMPLES = 50  # latency samples per batch (observing every record would cost more than it tells)
Publish = Callable[[str, list[tuple[bytes, bytes | None]]], Awaitable[None]]


class Record(NamedTuple):
    """The parts of a Kafka record the handler needs."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def reason_label(reason: str) -> str:
    if reason.startswith("undecodable") or reason.startswith("empty"):
        return "undecodable"
    if reason.startswith("unknown event type"):
        return "unknown_type"
    return "invalid"


@dataclass
class Plan:
    """What a batch does, grouped so that each employee is one store command."""

    records: Sequence[Record]
    writes: Writes = field(default_factory=dict)
    activity: dict[tuple[str, int], set[int]] = field(default_factory=dict)  # (department, day) -> pseudonyms
    registered: set[str] = field(default_factory=set)
    forget: list[str] = field(default_factory=list)
    dead: list[tuple[Record, str]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    newest_ms: int = 0
    prepared: Prepared | None = None  # the store's write, packed (`Handler.plan`)


def plan(records: Sequence[Record], now_ms: int, max_future_ms: int) -> Plan:
    """Decodes, checks and maps every record; poison records become dead letters with their reason."""
    out = Plan(records)
    by_employee: dict[str, dict[int, list[tuple[int, Op]]]] = {}
    for record in records:
        try:
            env = decode(record.key, record.value)
            payload = check(env, record.key, now_ms, max_future_ms)
        except Invalid as exc:
            out.dead.append((record, str(exc)))
            continue
        out.kinds[KIND[payload]] += 1
        eff = effects(env, payload)
        if eff.forget is not None:
            out.forget.append(eff.forget)
            by_employee.pop(eff.forget, None)  # what came before the erasure in this batch is erased with it
            continue
        if moves_clock(payload):
            ms = env.occurred_at.seconds * 1000 + env.occurred_at.nanos // 1_000_000
            out.newest_ms = max(out.newest_ms, ms)
        else:
            out.registered.add(env.employee_id)
        for who, op in eff.ops:
            by_employee.setdefault(who, {}).setdefault(record.partition, []).append((record.offset, op))
        if eff.activity is not None:
            department, day, who_pseudonym = eff.activity
            out.activity.setdefault((department, day), set()).add(who_pseudonym)
    out.writes = {employee: list(parts.items()) for employee, parts in by_employee.items()}
    if out.dead:
        out.kinds["dead_letter"] = len(out.dead)
    return out


class Handler:
    """The consumer's batch handler: plans while the batch before is written, then writes in order."""

    def __init__(
        self,
        store: RedisStore,
        publish: Publish,
        model: ScoringModel,
        topics: tuple[str, str, str],
        metrics: WorkerMetrics,
        retrying: Retrying,
    ) -> None:
        self.store = store
        self.publish = publish
        self.model = model
        self.topic_interactions, self.topic_engagement, self.topic_deadletter = topics
        self.metrics = metrics
        self.retrying = retrying
        self.max_future_ms = int(model.limits.max_future_skew_hours * 3_600_000)
        self.watermark_ms = 0

    async def start(self) -> None:
        self.watermark_ms = await self.retrying.redis("watermark", self.store.watermark)

    def plan(self, records: Sequence[Record]) -> Plan:
        """The batch planned and its store write packed, all while Redis still executes the batch before: only
        sending and reading replies wait for it."""
        work = plan(records, int(time.time() * 1000), self.max_future_ms)
        if work.writes or work.activity:
            work.prepared = self.store.prepare(work.writes, work.activity, work.newest_ms)
        return work

    def assigned(self, partitions: Sequence[int]) -> None:
        """Nothing to prepare: every write is checked against the partition's mark in Redis."""

    def revoked(self, partitions: Sequence[int]) -> None:
        """Nothing to drop: the worker keeps no state of its own."""

    async def apply(self, work: Plan) -> None:
        """Dead letters, erasures and the store's write, in that order; returns once Redis confirmed."""
        started = time.perf_counter()
        self.metrics.batch_size.observe(len(work.records))
        for name, count in work.kinds.items():
            self.metrics.events.labels(name).inc(count)
        if work.dead:
            await self._dead_letters(work.dead)
        for employee in work.forget:
            await self._forget(employee)
        if work.newest_ms > self.watermark_ms:
            self.watermark_ms = work.newest_ms
            self.metrics.watermark.set(work.newest_ms / 1000)
        if work.prepared is not None:
            prepared = work.prepared
            result = await self.retrying.redis("apply", lambda: self.store.write(prepared))
            self.metrics.duplicates.inc(result.duplicates)
            self.metrics.late_ignored.inc(result.late)
        if work.registered:
            await self.retrying.redis("memberships", lambda: self.store.sync_memberships(sorted(work.registered)))
        now = time.time()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        step = max(1, len(work.records) // LATENCY_SAMPLES)
        for record in work.records[::step]:
            self.metrics.event_to_score.observe(max(0.0, now - record.timestamp_ms / 1000))

    async def _dead_letters(self, dead: Sequence[tuple[Record, str]]) -> None:
        letters: list[tuple[bytes, bytes | None]] = []
        for record, reason in dead:
            letter = dead_letter(
                self.topic_interactions, record.partition, record.offset, record.key, record.value, reason, PRODUCER
            )
            log.warning("dead letter", extra={"partition": record.partition, "offset": record.offset, "reason": reason})
            letters.append((record.key or b"", letter))
            self.metrics.dead_letters.labels(reason_label(reason)).inc()
        await self.retrying.kafka(self.topic_deadletter, lambda: self.publish(self.topic_deadletter, letters))

    async def _forget(self, employee: str) -> None:
        """State, board entries and memberships go, then a tombstone compacts the employee's ScoreChanged away.
        The gone marker is written first, so the publisher never publishes the employee again. Every window's
        boards are cleared, so a board of a window an earlier scoring file ranked keeps nobody erased either."""
        windows = self.model.window_names
        await self.retrying.redis("forget", lambda: self.store.forget(employee, windows))
        tombstone: list[tuple[bytes, bytes | None]] = [(employee.encode(), None)]
        await self.retrying.kafka(self.topic_engagement, lambda: self.publish(self.topic_engagement, tombstone))
        self.metrics.tombstones.inc()
        log.info("employee forgotten", extra={"employee_id": employee})
