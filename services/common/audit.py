"""The audit of look-ups: every read of one person's data by someone else is appended to catalyst.audit.v1
before the answer leaves the service (no record, no answer), with the purpose the caller stated.

Callers state the purpose in gRPC metadata `x-catalyst-purpose`; a look-up of someone else's data without
one is refused before anything is read.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

from aiokafka import AIOKafkaProducer
from catalyst.events.v1 import audit_pb2, envelope_pb2

from services.common.auth import Principal
from services.common.errors import InvalidArgument

PURPOSE_KEY = "x-catalyst-purpose"
MAX_PURPOSE_CHARS = 200
TYPE = audit_pb2.DataAccessed.DESCRIPTOR.full_name


def stated_purpose(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The purpose in the call's metadata, or an INVALID_ARGUMENT that says how to state one."""
    for key, value in metadata or ():
        if key.lower() == PURPOSE_KEY:
            text = (value.decode(errors="replace") if isinstance(value, bytes) else value).strip()
            if len(text) > MAX_PURPOSE_CHARS:
                raise InvalidArgument(PURPOSE_KEY, f"at most {MAX_PURPOSE_CHARS} characters")
            if text:
                return text
    raise InvalidArgument(
        PURPOSE_KEY,
        "looking at another person's data needs a stated purpose: send gRPC metadata "
        f"'{PURPOSE_KEY}: <why you look>' (it is logged for the person and the works council)",
    )


def access_record(
    caller: Principal, employee_id: str, method: str, purpose: str, producer: str, at_ms: int, access_id: str
) -> envelope_pb2.Envelope:
    """The audit entry of one look-up: the person looked at is the envelope's employee (and record key)."""
    env = envelope_pb2.Envelope(
        event_id=access_id,
        producer=producer,
        type=TYPE,
        employee_id=employee_id,
        data_accessed=audit_pb2.DataAccessed(
            actor=caller.subject, actor_roles=sorted(r.value for r in caller.roles), method=method, purpose=purpose
        ),
    )
    env.occurred_at.FromMilliseconds(at_ms)
    return env


class AuditLog(Protocol):
    """Where entries go; `append` returns only once they are durable."""

    async def append(self, entries: list[envelope_pb2.Envelope]) -> None: ...


class Auditor:
    """Used by a servicer: `purpose` before reading someone else's data, `record` before answering."""

    def __init__(
        self,
        log: AuditLog,
        producer: str,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._log = log
        self._producer = producer
        self._clock_ms = clock_ms
        self._new_id = new_id

    @staticmethod
    def purpose(caller: Principal, employee_ids: Iterable[str], metadata: Iterable[tuple[str, str | bytes]]) -> str:
        """The stated purpose when the call is about anyone but the caller ("" for own data)."""
        if all(e == caller.subject for e in employee_ids):
            return ""
        return stated_purpose(metadata)

    async def record(self, caller: Principal, employee_ids: Iterable[str], method: str, purpose: str) -> int:
        """Appends one entry per other person looked at; returns how many."""
        at = self._clock_ms()
        entries = [
            access_record(caller, e, method, purpose, self._producer, at, self._new_id())
            for e in dict.fromkeys(employee_ids)
            if e and e != caller.subject
        ]
        if entries:
            await self._log.append(entries)
        return len(entries)


class KafkaAuditLog:
    """catalyst.audit.v1 through an idempotent producer (acks=all). Started on first use, so a service
    answers its callers' own-data questions even while Kafka is away."""

    def __init__(self, bootstrap: str, topic: str, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def append(self, entries: list[envelope_pb2.Envelope]) -> None:
        producer = await self._ready()
        sent = [await producer.send(self._topic, e.SerializeToString(), key=e.employee_id.encode()) for e in entries]
        await asyncio.gather(*sent)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
