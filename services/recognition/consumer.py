"""Consumes catalyst.engagement.v1 (ScoreChanged, FiguresDistribution, tombstones) and, for directory facts only,
catalyst.interactions.v1 (EmployeeRegistered, EmployeeForgotten).

aiokafka rather than faust: recognition needs no tables or windows, and a plain consumer loop lets us commit
an offset only after its Redis effect is stored (faust acknowledges an event even when the agent raises).
Effects are idempotent (ScoreChanged.version, deterministic event ids), so at-least-once delivery gives an
exactly-once effect. Transient faults (Redis or Kafka away) are retried without committing; records that can
never be processed go to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import CommitFailedError, KafkaError
from catalyst.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.dead_letters import dead_letter
from services.common.errors import Unavailable
from services.engagement.model.distribution import Distribution
from services.recognition.handlers import Erased, Recognition, utc
from services.recognition.metrics import RecognitionMetrics

log = logging.getLogger(__name__)

TRANSIENT = (RedisConnectionError, RedisTimeoutError, Unavailable, KafkaError, OSError, TimeoutError)
CONSUMER_NAME = "recognition"
SWEEP_LAG = timedelta(days=1)


class Poison(Exception):
    """A record that can never be processed; the message is the dead-letter reason."""


class EngagementConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        recognition: Recognition,
        metrics: RecognitionMetrics,
        engagement_topic: str,
        interactions_topic: str,
        deadletter_topic: str,
        poll_ms: int = 500,
        max_records: int = 500,
        retry_max_seconds: float = 5.0,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._recognition = recognition
        self._metrics = metrics
        self._engagement = engagement_topic
        self._interactions = interactions_topic
        self._deadletter = deadletter_topic
        self._poll_ms = poll_ms
        self._max_records = max_records
        self._retry_max = retry_max_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.watermark: datetime | None = None  # newest ScoreChanged event time seen: the revocation clock
        self._swept: datetime | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self._engagement, self._interactions])
        self._task = asyncio.create_task(self._run(), name="recognition-consumer")

    @property
    def task(self) -> asyncio.Task | None:
        return self._task

    async def stop(self) -> None:
        """Finishes the record in hand, commits what is done, leaves the group."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait({self._task})  # a task that crashed was reported when it ended
        await self._consumer.stop()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = await self._consumer.getmany(timeout_ms=self._poll_ms, max_records=self._max_records)
            except Exception:
                log.exception("polling Kafka failed; retrying")
                await self._pause(1.0)
                continue
            scored = [
                r.key.decode(errors="replace")
                for rs in batch.values()
                for r in rs
                if r.topic == self._engagement and r.key and r.value
            ]
            if scored and not await self._retrying(self._recognition.preload, scored):
                return
            done = True
            for records in batch.values():
                for record in records:
                    if not await self._retrying(self._handle, record):
                        done = False
                        break
                if not done:
                    break
            if not done:
                return  # stopping mid-batch: nothing of this batch is committed; it is replayed later
            if batch:
                await self._retrying(self._commit)
            if self.watermark is not None and self.watermark != self._swept:
                try:
                    if await self._retrying(self._sweep):
                        self._swept = self.watermark
                        self._metrics.revocation_clock.set(self.watermark.timestamp())
                except Exception:
                    log.exception("revocation sweep failed; it runs again after the next batch")

    async def _commit(self) -> None:
        try:
            await self._consumer.commit()
        except CommitFailedError as exc:
            # The group rebalanced: the new owner replays these records, and their effects are idempotent.
            log.warning("offset commit refused after a rebalance: %s", exc)

    async def _sweep(self) -> None:
        """Revokes for people engagement no longer re-publishes, a day of event time after their grace ended:
        whoever is still re-published daily is decided on their own figures of that day, even when another
        partition's newer figures arrived first. The first sweep of an event-time week also takes the week's
        snapshot of adoption with and without ambassadors."""
        assert self.watermark is not None
        revoked = await self._recognition.sweep(self.watermark - SWEEP_LAG)
        if revoked:
            log.info("revoked badges of %d employees after their grace period", revoked)
        await self._recognition.snapshot_adoption(self.watermark - SWEEP_LAG)

    async def _retrying(self, step: Callable[..., Awaitable[None]], *args: object) -> bool:
        """Runs a step until it succeeds; False if asked to stop before it did."""
        delay = 0.1
        while True:
            try:
                await step(*args)
                return True
            except TRANSIENT as exc:
                self._metrics.retries.labels(step.__name__.removeprefix("_")).inc()
                log.warning("transient failure (%s); retrying in %.1fs", exc, delay)
            if await self._pause(delay):
                return False
            delay = min(delay * 2, self._retry_max)

    async def _pause(self, seconds: float) -> bool:
        """Sleeps unless stopping; True when a stop was requested."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def _handle(self, record: ConsumerRecord) -> None:
        try:
            if record.topic == self._engagement:
                outcome = await self._engagement_record(record)
            else:
                outcome = await self._interaction_record(record)
        except Poison as exc:
            await self._dead_letter(record, str(exc))
            outcome = "dead_letter"
        except Erased:
            outcome = "erased"  # about a person erased before: refused, so a late event never recreates them
        except TRANSIENT:
            raise
        except Exception as exc:
            log.exception("cannot process %s[%d]@%d", record.topic, record.partition, record.offset)
            await self._dead_letter(record, f"processing failed: {type(exc).__name__}: {exc}")
            outcome = "dead_letter"
        topic = "engagement" if record.topic == self._engagement else "interactions"
        self._metrics.consumed.labels(topic, outcome).inc()

    async def _engagement_record(self, record: ConsumerRecord) -> str:
        if record.value is None:
            if not record.key:
                raise Poison("tombstone without a key: no employee to forget")
            await self._recognition.forget(record.key.decode(), datetime.fromtimestamp(record.timestamp / 1000, UTC))
            return "forgotten"
        env = _parse(record.value)
        if env.WhichOneof("payload") == "figures_distribution":
            await self._recognition.record_distribution(Distribution.from_pb(env.figures_distribution))
            return "distribution"
        if env.WhichOneof("payload") != "score_changed":
            raise Poison(
                f"expected ScoreChanged or FiguresDistribution on the engagement topic, got {env.type or 'no payload'}"
            )
        if not env.employee_id:
            raise Poison("ScoreChanged envelope without employee_id")
        if env.score_changed.employee_id and env.score_changed.employee_id != env.employee_id:
            raise Poison("ScoreChanged.employee_id differs from Envelope.employee_id")
        if record.key and record.key.decode(errors="replace") != env.employee_id:
            raise Poison("record key differs from Envelope.employee_id")
        at = utc(env.occurred_at.ToDatetime(tzinfo=UTC))
        if self.watermark is None or at > self.watermark:
            self.watermark = at
        return "applied" if await self._recognition.apply_scores(env) else "unchanged"

    async def _interaction_record(self, record: ConsumerRecord) -> str:
        """Only directory facts; anything else (including poison, which engagement dead-letters) is skipped."""
        if record.value is None:
            return "ignored"
        try:
            env = _parse(record.value)
        except Poison:
            return "ignored"
        kind = env.WhichOneof("payload")
        if not env.employee_id or kind not in ("employee_registered", "employee_forgotten"):
            return "ignored"
        if kind == "employee_forgotten":
            await self._recognition.forget(env.employee_id, utc(env.occurred_at.ToDatetime(tzinfo=UTC)))
            return "forgotten"
        await self._recognition.register(env)
        return "applied"

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        letter = dead_letter(
            record.topic, record.partition, record.offset, record.key, record.value, reason, CONSUMER_NAME
        )
        await self._producer.send_and_wait(self._deadletter, letter, key=record.key)
        self._metrics.dead_letters.inc()
        log.warning("dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)


def _parse(value: bytes) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(value)
    except DecodeError as exc:
        raise Poison(f"not a catalyst.events.v1.Envelope: {exc}") from None
    return env
