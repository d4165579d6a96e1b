"""The outbox relay: publishes outbox entries to Kafka and removes each only after the broker acked it.

Entries of one employee live in one Redis stream (see events.outbox_partition) in commit order; the
relay reads every stream from its head, sends in that order with an idempotent producer (acks=all,
key = employee id, so one Kafka partition per employee), flushes, and then XDELs exactly the
acknowledged entries. The producer (confluent-kafka, librdkafka) blocks in flush, so it runs in a worker
thread, never on the event loop.

The relay runs as a process of its own (`python -m services.feed.relay`, docs/decisions/0026) or inside
the gRPC process (`relay_enabled`); among several relays only the holder of a Redis lease publishes, so
two relays never interleave one employee's events.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import redis.asyncio as aioredis
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from services.common.lease import RedisLease
from services.feed.store import Keys

log = logging.getLogger(__name__)


class OncePerInterval(logging.Filter):
    """Lets a message through at most once per interval: librdkafka logs every failed reconnect, many a
    second while a broker is down, and the outbox gauges already say how long that lasts."""

    def __init__(self, seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._seconds = seconds
        self._clock = clock
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = re.sub(r"after \d+ms", "", record.getMessage())
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._seconds:
            return False
        if len(self._last) >= 1_000:
            self._last.clear()
        self._last[key] = now
        return True


librdkafka_log = logging.getLogger(f"{__name__}.librdkafka")
librdkafka_log.addFilter(OncePerInterval())


@dataclass(frozen=True)
class OutboxEntry:
    stream: str
    entry_id: bytes
    key: bytes
    value: bytes
    event_id: str


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.depth = Gauge("feed_outbox_depth", "Outbox entries not yet published", registry=registry)
        self.oldest_age = Gauge(
            "feed_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox entry (0 when empty)",
            registry=registry,
        )
        self.published = Counter("feed_relay_published", "Outbox entries the broker acknowledged", registry=registry)
        self.failures = Counter(
            "feed_relay_failures", "Outbox entries the relay could not publish (retried later)", registry=registry
        )
        self.leader = Gauge("feed_relay_leader", "1 while this process holds the relay lease", registry=registry)


class KafkaPublisher:
    """Blocking side of the relay; every method runs in a worker thread."""

    def __init__(self, factory: Callable[[], Producer], topic: str) -> None:
        self._factory = factory
        self._topic = topic
        self._producer: Producer | None = None
        self.abort = threading.Event()

    def publish(self, entries: list[OutboxEntry]) -> list[bool]:
        """Sends in order and waits for every send to settle; returns which ones the broker acked.

        A record that cannot even be enqueued stops the batch there, so nothing of an employee is sent
        after an earlier entry of theirs that was not. While the broker is down, flush keeps waiting (the
        idempotent producer retries with the same sequence numbers) unless `abort` is set for shutdown;
        unacked entries then stay in the outbox and are republished with their ids.
        """
        producer = self._ensure()
        acked = [False] * len(entries)
        rejected: dict[int, KafkaError] = {}

        def settle(index: int, error: KafkaError | None, _message: Message) -> None:
            if error is None:
                acked[index] = True
            else:
                rejected[index] = error

        for index, entry in enumerate(entries):
            try:
                producer.produce(self._topic, entry.value, entry.key, on_delivery=partial(settle, index))
            except (BufferError, KafkaException) as exc:
                log.warning("relay could not enqueue event %s: %s", entry.event_id, exc)
                break
        while producer.flush(1.0) and not self.abort.is_set():
            pass
        for index, error in sorted(rejected.items()):
            log.warning("broker rejected event %s: %s", entries[index].event_id, error)
        if any(error.fatal() for error in rejected.values()):
            log.error("the producer failed fatally; the next cycle starts a new one")
            self.close(0)
        return acked

    def _ensure(self) -> Producer:
        if self._producer is None:
            self._producer = self._factory()
        return self._producer

    def close(self, timeout: float) -> None:
        """Closes the producer; records still unacked after `timeout` are purged from the producer
        (their outbox entries remain and go out again, with the same ids, after a restart)."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        if producer.flush(timeout):
            log.warning("closing the producer with unacknowledged records; they stay in the outbox")
            producer.purge(in_queue=True, in_flight=True)
            producer.flush(0)
        producer.close()


@dataclass(frozen=True)
class ProducerTuning:
    """Throughput knobs; none of them affects order or delivery guarantees."""

    compression: str = "none"  # or "gzip"
    batch_bytes: int = 262_144
    linger_ms: int = 20


def producer_factory(
    bootstrap: str,
    delivery_timeout_ms: int,
    request_timeout_ms: int,
    tuning: ProducerTuning = ProducerTuning(),
) -> Callable[[], Producer]:
    """Idempotent producer, acks=all; at most 5 requests in flight keeps order per partition.

    `murmur2_random` is Java's key partitioner (kafka-python's and every other client's default), so an
    employee keeps the partition their earlier events went to. Record encoding, checksums and batching
    happen in librdkafka (C), which is why the relay uses this client (docs/decisions/0026)."""

    def build() -> Producer:
        return Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": "catalyst-feed-relay",
                "acks": "all",
                "enable.idempotence": True,
                "max.in.flight.requests.per.connection": 5,
                "partitioner": "murmur2_random",
                "compression.type": tuning.compression,
                "batch.size": tuning.batch_bytes,
                "linger.ms": tuning.linger_ms,
                "message.timeout.ms": delivery_timeout_ms,
                "request.timeout.ms": request_timeout_ms,
                "reconnect.backoff.max.ms": 2_000,
                "logger": librdkafka_log,
            }
        )

    return build


class OutboxRelay:
    """Runs as an asyncio task (in the relay process or the gRPC one); `drain()` empties the outbox on shutdown."""

    def __init__(
        self,
        redis: aioredis.Redis,
        publisher: KafkaPublisher,
        partitions: int,
        metrics: RelayMetrics,
        *,
        batch_size: int = 5_000,
        idle_seconds: float = 0.2,
        backoff_seconds: float = 1.0,
        lease_seconds: float = 15.0,
    ) -> None:
        self._redis = redis
        self._publisher = publisher
        self._streams = [Keys.outbox(p) for p in range(partitions)]
        self._metrics = metrics
        self._batch = batch_size
        self._idle = idle_seconds
        self._backoff = backoff_seconds
        self._lease_ms = int(lease_seconds * 1000)
        self._owner = f"relay-{uuid.uuid4().hex[:12]}"
        self._lease = RedisLease(redis, Keys.RELAY_LEASE)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._gauges: asyncio.Task | None = None
        self._leader = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        self._gauges = asyncio.create_task(self._watch_gauges(), name="outbox-gauges")

    async def _watch_gauges(self) -> None:
        """Depth and age are refreshed on their own clock, so they keep rising while a publish is
        stuck on an unreachable broker."""
        while True:
            try:
                await self.update_gauges()
            except Exception:
                log.warning("could not read the outbox depth", exc_info=True)
            await asyncio.sleep(1.0)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                published, failed = await self.publish_once()
                if not published and not failed:
                    await self._wait_for_entries()
                    continue
            except Exception:
                log.exception("outbox relay cycle failed; retrying")
                failed = 1
            if failed:
                await self._pause(self._backoff)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _wait_for_entries(self) -> None:
        """Returns as soon as any stream holds an entry, or after `idle_seconds` (then the lease is renewed).

        A blocking XREAD from each stream's start: it answers at once if an entry arrived since the last
        read, and otherwise when the next one is added, whichever process adds it. A relay that does not
        hold the lease only waits (the streams are not empty while the holder publishes)."""
        if not self._leader:
            await self._pause(self._idle)
            return
        streams = {stream: b"0-0" for stream in self._streams}
        await self._redis.xread(streams, count=1, block=max(1, int(self._idle * 1000)))

    async def _hold_lease(self) -> bool:
        held = await self._lease.hold(self._owner, self._lease_ms / 1000)
        if held != self._leader:
            log.info("relay lease %s", "acquired" if held else "held by another replica")
        self._leader = held
        self._metrics.leader.set(1 if held else 0)
        return held

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            await self._hold_lease()

    async def read_batch(self) -> list[OutboxEntry]:
        """The oldest entries of every stream (each stream's head is its oldest unpublished entry)."""
        per_stream = max(1, self._batch // len(self._streams))
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                pipe.xrange(stream, "-", "+", count=per_stream)
            results = await pipe.execute()
        entries = []
        for stream, rows in zip(self._streams, results, strict=True):
            for entry_id, fields in rows:
                entries.append(OutboxEntry(stream, entry_id, fields[b"key"], fields[b"value"], fields[b"id"].decode()))
        return entries

    async def publish_once(self) -> tuple[int, int]:
        """One cycle: read, publish in a thread, remove the acked entries. Returns (published, failed)."""
        if not await self._hold_lease():
            return 0, 0
        entries = await self.read_batch()
        if not entries:
            return 0, 0
        keeper = asyncio.create_task(self._keep_lease())
        try:
            acked = await asyncio.to_thread(self._publisher.publish, entries)
        finally:
            keeper.cancel()
        done = [e for e, ok in zip(entries, acked, strict=True) if ok]
        if done:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream in {e.stream for e in done}:
                    pipe.xdel(stream, *[e.entry_id for e in done if e.stream == stream])
                await pipe.execute()
        failed = len(entries) - len(done)
        self._metrics.published.inc(len(done))
        self._metrics.failures.inc(failed)
        return len(done), failed

    async def update_gauges(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                pipe.xlen(stream)
                pipe.xrange(stream, "-", "+", count=1)
            results = await pipe.execute()
        depth = sum(results[0::2])
        heads = [rows[0][0] for rows in results[1::2] if rows]
        oldest_ms = min((int(h.split(b"-")[0]) for h in heads), default=0)
        self._metrics.depth.set(depth)
        self._metrics.oldest_age.set(max(0.0, time.time() - oldest_ms / 1000) if oldest_ms else 0.0)

    async def depth(self) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                pipe.xlen(stream)
            return sum(await pipe.execute())

    async def drain(self, timeout: float) -> None:
        """Stops the loop, publishes what is left within `timeout`, then closes the producer.

        Whatever the broker has not acknowledged by then stays in the outbox and goes out, with
        the same event ids, after the next start."""
        self._stopping.set()
        abort = self._publisher.abort
        timer = asyncio.get_running_loop().call_later(timeout, abort.set)
        try:
            if self._task is not None:
                await self._task
            while not abort.is_set() and await self.depth():
                try:
                    published, failed = await self.publish_once()
                except Exception:
                    log.exception("relay failed while draining")
                    published, failed = 0, 1
                if not published and not failed:
                    break
                if failed:
                    await asyncio.sleep(self._backoff)
        finally:
            timer.cancel()
            abort.set()
            if self._gauges is not None:
                self._gauges.cancel()
            await self.update_gauges()
            left = await self.depth()
            if left:
                log.warning("relay stopped with %d entries in the outbox; they go out on the next start", left)
            await asyncio.to_thread(self._publisher.close, 5.0)
            if self._leader:
                await self._lease.release(self._owner)
                self._leader = False
            self._metrics.leader.set(0)
            log.info("relay drained")
