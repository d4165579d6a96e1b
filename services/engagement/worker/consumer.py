"""The engagement worker's hot path: a plain aiokafka consumer feeding the processor in batches.

faust stays the worker's framework (lifecycle, signals, web, timers, producer), but its per-record consumer
path cost ~40-60 CPU-us per record against ~4 for a `getmany` loop (docs/decisions/0004). This service owns
the consumer group `engagement_group_id` and commits offsets itself:

* batches are written one after the other, in order; the next one is planned (pure: decode, validate, map)
  while Redis still executes the writes of the one before, which would otherwise leave the worker idle;
* an offset is committed only after its batch was applied (Redis written, dead letters sent);
* commits are periodic (`worker_commit_interval_seconds`), on partition revocation and on shutdown. The Redis
  writes are idempotent per (partition, offset), so the interval only bounds how much a crash replays;
* a batch is never abandoned half-way while the worker keeps running: revocation waits for it, shutdown gives
  it `shutdown_grace_seconds` and otherwise leaves its offsets uncommitted (the next owner replays it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from services.engagement.worker.handler import Record
from services.engagement.worker.metrics import WorkerMetrics
from services.engagement.worker.settings import EngagementWorkerSettings

log = logging.getLogger(__name__)

P = TypeVar("P")
# `_new(Record, fields)` builds the same Record as `Record(...)` at half the cost (no Python-level __new__ of a
# NamedTuple): once per record on the hot path.
_new = tuple.__new__


class BatchHandler(Protocol[P]):
    """What the consumer drives: a pure, synchronous `plan` and the `apply` that writes a planned batch."""

    def plan(self, records: Sequence[Record]) -> P: ...

    async def apply(self, planned: P) -> None: ...

    def assigned(self, partitions: Sequence[int]) -> None:
        """The group assigned these partitions (before any of their records is fetched)."""

    def revoked(self, partitions: Sequence[int]) -> None:
        """The partitions went to the group, after their last batch was applied and committed."""


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: InteractionsConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.owner.assigned(assigned)


class InteractionsConsumer(Service, Generic[P]):
    """Consumes the interactions topic with `getmany`; each batch is planned, then applied once the batch
    before it is applied."""

    def __init__(
        self,
        settings: EngagementWorkerSettings,
        prepare: Callable[[], Awaitable[None]],
        handler: BatchHandler[P],
        metrics: WorkerMetrics,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.topic = settings.topic_interactions
        self._prepare = prepare
        self._handler = handler
        self._metrics = metrics
        self._kafka: AIOKafkaConsumer | None = None
        self._loop_task: asyncio.Future | None = None
        self._stopping = asyncio.Event()
        self._inflight: asyncio.Task | None = None
        self._done: dict[TopicPartition, int] = {}  # next offset to commit: every record before it is handled
        self._committed: dict[TopicPartition, int] = {}  # last committed by this worker (or read from Kafka)
        self.serving = False  # True once the group gave this worker its first assignment

    def _new_consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.engagement_group_id,
            client_id=f"{s.engagement_group_id}-worker",
            enable_auto_commit=False,
            auto_offset_reset=s.worker_offset_reset,
            fetch_min_bytes=s.worker_fetch_min_bytes,
            fetch_max_wait_ms=s.worker_fetch_max_wait_ms,
            session_timeout_ms=int(s.worker_session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(s.worker_heartbeat_seconds * 1000),
            rebalance_timeout_ms=int(s.worker_rebalance_timeout_seconds * 1000),
            request_timeout_ms=int(max(s.worker_session_timeout_seconds + 10, 40.0) * 1000),
        )

    async def on_start(self) -> None:
        self._kafka = self._new_consumer()
        await self._kafka.start()
        self._loop_task = self.add_future(self._run())

    async def on_stop(self) -> None:
        """SIGTERM: finish the batch in hand, commit, leave the group, all within the shutdown grace."""
        self._stopping.set()
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        if self._loop_task is not None:
            await asyncio.wait({self._loop_task}, timeout=self.settings.shutdown_grace_seconds)
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()  # its offsets stay uncommitted: the next owner replays it (idempotent)
            log.warning("in-flight batch did not finish within the shutdown grace; it will be replayed")
        if self._kafka is None:
            return
        try:
            await asyncio.wait_for(self._commit(), max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            log.warning("final offset commit timed out; the uncommitted records will be replayed")
        try:
            await asyncio.wait_for(self._kafka.stop(), max(2.0, deadline - time.monotonic()))
        except TimeoutError:
            log.warning("leaving the group timed out; the partitions move after the session timeout")

    async def _run(self) -> None:
        assert self._kafka is not None
        await self._prepare()
        self._kafka.subscribe([self.topic], listener=_Listener(self))
        s = self.settings
        poll_ms = int(s.worker_poll_seconds * 1000)
        next_commit = time.monotonic() + s.worker_commit_interval_seconds
        while not self._stopping.is_set():
            try:
                batch = await self._kafka.getmany(timeout_ms=poll_ms, max_records=s.worker_batch_size)
            except KafkaError as exc:
                log.warning("polling Kafka failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            if batch:
                await asyncio.sleep(0)  # replies that arrived for the batch in flight complete it first
                records = [
                    _new(Record, (m.partition, m.offset, m.key, m.value, m.timestamp))
                    for messages in batch.values()
                    for m in messages
                ]
                planned = self._handler.plan(records)  # meanwhile Redis executes the batch in flight
                if self._inflight is not None:
                    await asyncio.shield(self._inflight)  # batches apply in order, each on the state of the last
                self._inflight = asyncio.ensure_future(self._apply(batch, planned))
                await asyncio.sleep(0)  # its writes go out before the next batch is planned
            if time.monotonic() >= next_commit:
                await self._commit()
                next_commit = time.monotonic() + s.worker_commit_interval_seconds
        if self._inflight is not None:
            await asyncio.shield(self._inflight)

    async def _apply(self, batch: dict[TopicPartition, list], planned: P) -> None:
        """Applies one batch, then marks its offsets done (inside the task, so whoever awaits it sees them).
        Partitions revoked while it waited for its turn are not marked: the store leaves their ops out, and
        their new owner replays them from its own position."""
        await self._handler.apply(planned)
        assignment = self._kafka.assignment() if self._kafka is not None else set()
        for tp, messages in batch.items():
            if tp in assignment:
                self._done[tp] = messages[-1].offset + 1

    async def _commit(self, only: Sequence[TopicPartition] | None = None) -> None:
        """Commits the handled offsets that moved since the last commit; a refused commit is only logged."""
        assert self._kafka is not None
        assignment = self._kafka.assignment()
        pending = {
            tp: offset
            for tp, offset in self._done.items()
            if tp in assignment and (only is None or tp in only) and self._committed.get(tp) != offset
        }
        if not pending:
            return
        try:
            await self._kafka.commit(pending)
        except CommitFailedError as exc:
            # The group rebalanced under us: the new owner replays from its last commit, idempotently.
            log.warning("offset commit refused after a rebalance: %s", exc)
            return
        except KafkaError as exc:
            log.warning("offset commit failed (%s); retrying at the next commit", exc)
            return
        self._committed.update(pending)

    async def revoked(self, revoked: list[TopicPartition]) -> None:
        """Waits for the batch in hand (never cancelled half-way), commits, forgets the partitions."""
        if self._inflight is not None and not self._inflight.done():
            log.info("partitions revoked; finishing the in-flight batch before handing them over")
            await asyncio.shield(self._inflight)
        await self._commit(revoked)
        self._handler.revoked([tp.partition for tp in revoked if tp.topic == self.topic])
        for tp in revoked:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)
            if tp.topic == self.topic:
                try:
                    self._metrics.lag.remove(str(tp.partition))
                except KeyError:
                    pass

    def assigned(self, assigned: list[TopicPartition]) -> None:
        self.serving = True
        self._handler.assigned([tp.partition for tp in assigned if tp.topic == self.topic])
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})

    def partitions(self) -> list[int]:
        """The interactions partitions this worker holds now."""
        if self._kafka is None:
            return []
        return sorted(tp.partition for tp in self._kafka.assignment() if tp.topic == self.topic)

    async def export_lag(self) -> None:
        """consumer lag = end offset (high water) - committed offset, per assigned partition, no admin client."""
        if self._kafka is None:
            return
        for tp in self._kafka.assignment():
            end = self._kafka.highwater(tp)
            if end is None:
                continue
            done = self._committed.get(tp)
            if done is None:
                done = await self._kafka.committed(tp)  # until this worker's first commit of the partition
                if tp not in self._kafka.assignment():
                    continue
                if done is not None:
                    done = self._committed.setdefault(tp, done)
            self._metrics.lag.labels(str(tp.partition)).set(max(0, end - (done or 0)))
