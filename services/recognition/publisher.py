"""Outbox relay: publishes each employee's pending recognition records to catalyst.recognition.v1.

A record leaves the outbox only after Kafka acknowledged it (idempotent producer, acks=all), so a crash
publishes it again at worst; its deterministic event id lets consumers drop the copy. Records of one employee
go out in order, keyed by the employee id (one partition per employee).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from aiokafka import AIOKafkaProducer

from services.recognition.metrics import RecognitionMetrics
from services.recognition.store import TOMBSTONE, RecognitionStore

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        store: RecognitionStore,
        producer: AIOKafkaProducer,
        topic: str,
        metrics: RecognitionMetrics,
        batch_size: int = 200,
        idle_seconds: float = 0.2,
        backoff_seconds: float = 1.0,
        lease_seconds: float = 15.0,
    ) -> None:
        self._store = store
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._batch = batch_size
        self._idle = idle_seconds
        self._backoff = backoff_seconds
        self._lease = lease_seconds
        self._owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None

    def kick(self) -> None:
        """Called after a commit that queued records: publish now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        recovered = await self._store.recover_pending()
        if recovered:
            log.info("relay found %d employees with pending records", recovered)
        self._task = asyncio.create_task(self._run(), name="recognition-relay")

    @property
    def task(self) -> asyncio.Task | None:
        return self._task

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Publishes what is pending (bounded), then stops."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=drain_seconds)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task})
                log.warning("relay stopped with records still pending; they go out after the next start")

    async def publish_pending(self) -> int:
        """One round: every pending employee's outbox, in order, if this relay holds the lease.

        Returns the number of records sent."""
        if not await self._store.hold_relay_lease(self._owner, self._lease):
            return 0
        sent = 0
        for employee_id in await self._store.pending(self._batch):
            entries = await self._store.outbox(employee_id)
            key = employee_id.encode()
            for entry in entries:
                value = None if entry == TOMBSTONE else entry[1:]
                await self._producer.send_and_wait(self._topic, value=value, key=key)
                sent += 1
            await self._store.ack(employee_id, entries)
        self._metrics.published.inc(sent)
        return sent

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                sent = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._metrics.publish_failures.inc()
                log.exception("outbox publish failed; retrying")
                if self._stopping:
                    return
                await asyncio.sleep(self._backoff)
                continue
            if self._stopping and not sent:
                with contextlib.suppress(Exception):
                    await self._store.release_relay_lease(self._owner)
                return
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle)
