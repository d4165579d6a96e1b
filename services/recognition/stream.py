"""Fans catalyst.recognition.v1 out to StreamBadgeEvents clients.

Every process tails the topic itself (no consumer group, from the end), so a client sees the events of every
instance, not only those this one published. Visibility is checked per event: hidden or opted-out employees
appear only in their own stream; pending or declined invitations, and facet badges the holder has not shown,
only to the person and to the programme owner (consent first: nothing announces a person before they chose), and
programme events (volunteering, legitimation) only to them as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from catalyst.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError

from services.common.errors import Unavailable
from services.recognition.metrics import RecognitionMetrics
from services.recognition.store import RecognitionStore

log = logging.getLogger(__name__)

_END = None
# The person's own choices and what the programme gave them: never announced to colleagues.
PRIVATE_TO_HOLDER = ("invitation_declined", "volunteered", "volunteering_withdrawn", "legitimation_recorded")
SHOWN_BY_CHOICE = ("badge_granted", "badge_revoked", "badge_endorsed")


@dataclass(eq=False)
class Subscriber:
    viewer: str
    programme_owner: bool
    department: str
    queue: asyncio.Queue = field(repr=False)
    overflowed: bool = False

    async def next(self) -> envelope_pb2.Envelope | None:
        """The next event, or None when the stream ends (shutdown)."""
        item = await self.queue.get()
        if item is _END and self.overflowed:
            raise Unavailable("this stream fell too far behind and was closed; open it again")
        return item


def may_see(sub: Subscriber, env: envelope_pb2.Envelope, visible: bool, public: frozenset[str]) -> bool:
    """`public`: the badges the person shows to colleagues (accepted invitations, facet badges they showed)."""
    if sub.department and env.department_id != sub.department:
        return False
    if env.employee_id == sub.viewer:
        return True
    if not visible:
        return False
    kind = env.WhichOneof("payload")
    private = kind in PRIVATE_TO_HOLDER or (kind == "badge_granted" and env.badge_granted.invitation)
    if kind in SHOWN_BY_CHOICE:
        private = private or getattr(env, kind).badge not in public
    return sub.programme_owner or not private


class BadgeEventHub:
    def __init__(
        self, consumer: AIOKafkaConsumer, store: RecognitionStore, metrics: RecognitionMetrics, queue_size: int
    ) -> None:
        self._consumer = consumer
        self._store = store
        self._metrics = metrics
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task | None = None

    async def start(self, ready_timeout: float = 30.0) -> None:
        """Starts tailing and returns once the end offsets are known, so later events are not missed."""
        await self._consumer.start()
        deadline = asyncio.get_running_loop().time() + ready_timeout
        while not self._consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise Unavailable("no partitions of the recognition topic were assigned")
            await asyncio.sleep(0.05)
        await self._consumer.seek_to_end()
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="recognition-stream-hub")

    async def close_streams(self) -> None:
        """Ends every open stream (at shutdown, before the gRPC server drains its calls)."""
        for sub in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(_END)

    async def stop(self) -> None:
        await self.close_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def subscribe(self, viewer: str, programme_owner: bool, department: str) -> Subscriber:
        sub = Subscriber(viewer, programme_owner, department, asyncio.Queue(self._queue_size + 1))
        self._subscribers.add(sub)
        self._metrics.stream_clients.set(len(self._subscribers))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        self._metrics.stream_clients.set(len(self._subscribers))

    async def _run(self) -> None:
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the recognition topic failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for records in batch.values():
                for record in records:
                    await self._dispatch(record.value)

    async def _dispatch(self, value: bytes | None) -> None:
        if value is None or not self._subscribers:
            return
        env = envelope_pb2.Envelope()
        try:
            env.ParseFromString(value)
        except DecodeError:
            return
        rules = self._store.rules
        try:
            record = await self._store.load(env.employee_id)
            visible = record.visible
            public = frozenset(b for b in rules.badges if record.shown(rules, b))
        except Exception:
            log.exception("cannot check visibility; event withheld from streams")
            visible, public = False, frozenset()
        for sub in list(self._subscribers):
            if sub.overflowed or not may_see(sub, env, visible, public):
                continue
            if sub.queue.qsize() >= self._queue_size:
                sub.overflowed = True
                sub.queue.put_nowait(_END)
                continue
            sub.queue.put_nowait(env)
