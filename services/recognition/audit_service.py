"""The audit's adapters in the recognition process: the projection of catalyst.audit.v1 into the audit store,
and the AuditService (who looked at my data; the log and its aggregates for the works council)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from catalyst.audit.v1 import audit_pb2, audit_pb2_grpc
from catalyst.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.auth import Role, current_principal
from services.common.errors import FailedPrecondition, InvalidArgument
from services.recognition.audit import page_offset, page_size, summarise
from services.recognition.audit_store import AuditStore

log = logging.getLogger(__name__)
SERVICE_NAME = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
SUMMARY_MAX_ENTRIES = 200_000
TRANSIENT = (RedisConnectionError, RedisTimeoutError, KafkaError, OSError, TimeoutError)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.stored = Counter("audit_entries_stored", "Audit entries written to the audit store", registry=registry)
        self.expired = Counter(
            "audit_entries_expired", "Audit entries removed from the store after their retention", registry=registry
        )
        self.rejected = Counter(
            "audit_records_rejected", "Records on the audit topic that are no audit entry", registry=registry
        )


class AuditProjection:
    """Copies catalyst.audit.v1 into the audit store; commits only what is stored (an entry stored twice is
    stored once), so the store catches up with the log after any crash."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        store: AuditStore,
        metrics: AuditMetrics,
        clock_ms: Callable[[], int] = wall_ms,
        poll_ms: int = 300,
    ) -> None:
        self._consumer = consumer
        self._store = store
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._poll_ms = poll_ms
        self._stopping = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self.task = asyncio.create_task(self._run(), name="audit-projection")

    async def stop(self) -> None:
        self._stopping.set()
        if self.task is not None:
            await self.task
        await self._consumer.stop()

    def _entries(self, records: list) -> list[envelope_pb2.Envelope]:
        entries = []
        for record in records:
            try:
                env = envelope_pb2.Envelope.FromString(record.value or b"")
            except DecodeError:
                env = envelope_pb2.Envelope()
            if env.WhichOneof("payload") != "data_accessed" or not env.employee_id:
                self._metrics.rejected.inc()
                log.warning("skipped a record that is no audit entry", extra={"offset": record.offset})
                continue
            entries.append(env)
        return entries

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                batches = await self._consumer.getmany(timeout_ms=self._poll_ms, max_records=500)
                records = [r for batch in batches.values() for r in batch]
                if records:
                    expired = await self._store.append(self._entries(records), self._clock_ms())
                    self._metrics.stored.inc(len(records))
                    self._metrics.expired.inc(expired)
                    await self._consumer.commit()
            except TRANSIENT as exc:
                log.warning("audit projection paused: %r", exc)
                await asyncio.sleep(1.0)
                await self._consumer.seek_to_committed()  # read again from the last commit: nothing is skipped


def _timestamp(ms: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, store: AuditStore, clock_ms: Callable[[], int] = wall_ms) -> None:
        self._store = store
        self._clock_ms = clock_ms

    def register(self, server: grpc.aio.Server) -> None:
        audit_pb2_grpc.add_AuditServiceServicer_to_server(self, server)

    async def ListMyAccesses(
        self, request: audit_pb2.ListMyAccessesRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListMyAccessesResponse:
        caller = current_principal()
        offset, size = page_offset(request.page_token), page_size(request.page_size)
        found, more = await self._store.about(caller.subject, offset, size, self._clock_ms())
        token = str(offset + size) if more else ""
        return audit_pb2.ListMyAccessesResponse(accesses=found, next_page_token=token)

    async def ListAccesses(
        self, request: audit_pb2.ListAccessesRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListAccessesResponse:
        current_principal().require(Role.WORKS_COUNCIL)
        employee, actor = request.employee_id.strip(), request.actor.strip()
        if employee and actor:
            raise InvalidArgument("actor", "filter by employee_id or by actor, not both")
        offset, size = page_offset(request.page_token), page_size(request.page_size)
        now = self._clock_ms()
        if employee:
            found, more = await self._store.about(employee, offset, size, now)
        elif actor:
            found, more = await self._store.by(actor, offset, size, now)
        else:
            found, more = await self._store.log(offset, size, now)
        return audit_pb2.ListAccessesResponse(accesses=found, next_page_token=str(offset + size) if more else "")

    async def SummariseAccesses(
        self, request: audit_pb2.SummariseAccessesRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.SummariseAccessesResponse:
        current_principal().require(Role.WORKS_COUNCIL)
        now = self._clock_ms()
        since = request.since.ToMilliseconds() if request.HasField("since") else 0
        until = request.until.ToMilliseconds() if request.HasField("until") else now
        if until < since:
            raise InvalidArgument("until", "must not be before since")
        entries = await self._store.between(since, until, now, SUMMARY_MAX_ENTRIES)
        if len(entries) > SUMMARY_MAX_ENTRIES:
            raise FailedPrecondition(
                f"the period holds more than {SUMMARY_MAX_ENTRIES} look-ups; summarise a shorter one"
            )
        counts = summarise(entries)
        response = audit_pb2.SummariseAccessesResponse(
            counts=[
                audit_pb2.AccessCount(
                    actor_role=c.actor_role,
                    method=c.method,
                    purpose=c.purpose,
                    accesses=c.accesses,
                    people=c.people,
                    actors=c.actors,
                )
                for c in counts
            ],
            total_accesses=len(entries),
        )
        oldest = await self._store.oldest_ms()
        if oldest is not None:
            response.oldest_retained.CopyFrom(_timestamp(oldest))
        return response
