"""`python -m services.engagement.publisher`: the engagement worker's publisher process. The worker starts it
(publisher_link.py) and nobody else should: it publishes the coalesced ScoreChanged of the worker's buckets,
in a process of its own at a low CPU priority, so that publishing never holds up a batch of the consumer.

The pipe protocol, one JSON document per line:
* stdin, from the worker, five times a second: `{"buckets": [the interactions partitions it holds], "backlog":
  records behind their ends (-1 not known), "busy": the worker's CPU time since the line before, in cores}`.
  End of file (the worker stopped or died): the process exits.
* stdout, to the worker: lists of metric updates (metrics_relay.py), at most one line per emit interval.
  Anything else written to stdout goes to stderr, where the logs go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from typing import cast

from aiokafka import AIOKafkaProducer

from services.common import cpus
from services.common.logging import configure_logging
from services.common.redis_client import connect
from services.common.settings import load
from services.engagement import metrics_relay
from services.engagement.config import EngagementWorkerSettings, ScoringConfig, load_scoring
from services.engagement.emitter import Emitter
from services.engagement.gc_policy import collect_rarely
from services.engagement.metrics import WorkerMetrics
from services.engagement.pacing import CpuShare
from services.engagement.retrying import Retrying
from services.engagement.store import EngagementStore

log = logging.getLogger(__name__)
IDLE_BELOW = 0.25  # a worker that used less of a core since its last line is idle: the publisher is not paced


class Publisher:
    """Emit rounds every interval over the buckets the worker last named, until the worker goes away."""

    def __init__(self, settings: EngagementWorkerSettings, cfg: ScoringConfig) -> None:
        self.settings = settings
        self.metrics = metrics_relay.RelayedMetrics()
        metrics = cast(WorkerMetrics, self.metrics)  # the relayed subset of WorkerMetrics
        self.redis = connect(settings.redis_url)
        store = EngagementStore(
            self.redis,
            cfg,
            settings.topic_interactions,
            settings.interactions_partitions,
            settings.worker_forgotten_ttl_days * 86_400,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.engagement_group_id}-publisher",
            acks="all",
            linger_ms=5,
        )
        self.buckets: list[int] = []
        self.backlog = -1
        self.busy = 1.0  # the worker's CPU since its last line, in cores (not known yet: busy)
        self.share = CpuShare(settings.worker_publisher_cpu_share)
        self.emitter = Emitter(
            store,
            self._publish,
            settings,
            cfg,
            metrics,
            Retrying(metrics, settings.worker_redis_backoff_max_seconds),
            backlog=lambda: self.backlog,
            pace=self._pace,
        )
        self._gone = asyncio.Event()  # the worker closed the pipe

    async def _publish(self, topic: str, key: bytes, value: bytes | None) -> asyncio.Future[object]:
        return await self.producer.send(topic, value, key=key)

    def control(self, line: bytes) -> None:
        """One line from the worker: its buckets, backlog and how busy it was."""
        try:
            message = json.loads(line)
            buckets, backlog, busy = message["buckets"], message["backlog"], message["busy"]
            if not (isinstance(backlog, int) and all(isinstance(b, int) for b in buckets)):
                raise ValueError("buckets and backlog are integers")
            if not isinstance(busy, (int, float)) or isinstance(busy, bool):
                raise ValueError("busy is a number")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a control line from the worker (%s): %r", exc, line[:200])
            return
        self.buckets, self.backlog, self.busy = sorted(buckets), backlog, float(busy)

    async def _pace(self) -> None:
        """The CPU share holds only while the worker is busy: its idle time (after a backfill, between bursts) is
        the publisher's, at its low priority."""
        if self.busy >= IDLE_BELOW:
            await self.share()
        else:
            self.share.restart()

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            self.control(line)
        self._gone.set()

    async def run(self, reader: asyncio.StreamReader, channel: asyncio.StreamWriter) -> None:
        """Rounds until the worker closes the pipe; a round in hand then stops after its current step (the
        taking set keeps a chunk whose publication was cut short)."""
        listening = asyncio.ensure_future(self._listen(reader))
        relaying = asyncio.ensure_future(self._relay(channel))
        gone = asyncio.ensure_future(self._gone.wait())
        interval = self.settings.worker_emit_interval_seconds
        try:
            await self.producer.start()
            while not self._gone.is_set():
                started = time.monotonic()
                emitting = asyncio.ensure_future(self.emitter.run_once(self.buckets))
                await asyncio.wait({emitting, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not emitting.done():
                    emitting.cancel()
                    await asyncio.wait({emitting})
                    break
                if emitting.exception() is not None:
                    log.error("emit round failed; retrying next interval", exc_info=emitting.exception())
                await asyncio.wait({gone}, timeout=max(0.0, interval - (time.monotonic() - started)))
        finally:
            for task in (listening, relaying, gone):
                task.cancel()
            await self.producer.stop()
            await self.redis.aclose()
            with contextlib.suppress(ConnectionError):  # the worker may be gone already
                await self._flush(channel)

    async def _relay(self, channel: asyncio.StreamWriter) -> None:
        """The metric updates, once per emit interval (a round may run much longer)."""
        while True:
            await asyncio.sleep(self.settings.worker_emit_interval_seconds)
            await self._flush(channel)

    async def _flush(self, channel: asyncio.StreamWriter) -> None:
        updates = self.metrics.drain()
        if updates:
            channel.write(metrics_relay.encode(updates))
            await channel.drain()


async def _pipes() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """stdin as a stream; the relay on a copy of stdout, whose own descriptor is pointed at stderr."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    relay = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, relay)
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


async def _main(settings: EngagementWorkerSettings, cfg: ScoringConfig) -> None:
    reader, channel = await _pipes()
    await Publisher(settings, cfg).run(reader, channel)


def pin(settings: EngagementWorkerSettings) -> None:
    """Moves the publisher off the consumer's CPUs, whose affinity it inherited. When the default (every other
    CPU) is not usable here, e.g. a container limited to the consumer's core, it stays there with a warning; CPUs
    set explicitly must be usable."""
    if not settings.publisher_cpus:
        return
    try:
        cpus.pin(settings.publisher_cpus)
    except ValueError as exc:
        if settings.worker_publisher_cpus:
            raise
        log.warning("the publisher shares the consumer's CPUs: %s", exc)


def main() -> None:
    settings = load(EngagementWorkerSettings)
    configure_logging("engagement-publisher", settings.log_level)
    cfg = load_scoring(settings.scoring_file)
    os.nice(max(0, settings.worker_publisher_nice - os.nice(0)))  # at least this nice
    pin(settings)
    collect_rarely()  # with the default thresholds its collections took 0.8 CPU-s per 20 s of load, up to 120 ms each
    asyncio.run(_main(settings, cfg))


if __name__ == "__main__":
    main()
