"""The worker's side of its publisher process (publisher.py): starts it, tells it five times a second which
buckets the worker holds, how far behind the consumer is and how busy the worker was (its CPU time since the
last time), applies the metrics it relays, and starts it again should it die. Its dirty marks wait in Redis
meanwhile (the taking set keeps a chunk it was publishing), so a restart loses nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable

from mode import Service

from services.engagement import metrics_relay
from services.engagement.config import EngagementWorkerSettings
from services.engagement.metrics import WorkerMetrics

log = logging.getLogger(__name__)
COMMAND = (sys.executable, "-m", "services.engagement.publisher")
FIRST_RESTART_SECONDS = 1.0
LONGEST_RESTART_SECONDS = 30.0
FEED_SECONDS = 0.2  # how often the publisher hears how busy the worker is: an unpaced publisher yields soon
RELAY_LINE_LIMIT = 1 << 24  # bytes; a line carries an interval's metric updates
STEADY_SECONDS = 60.0  # a process that ran this long before it died is restarted at once again


class PublisherLink(Service):
    """Keeps one publisher process running beside the consumer while the worker runs."""

    def __init__(
        self,
        settings: EngagementWorkerSettings,
        metrics: WorkerMetrics,
        *,
        buckets: Callable[[], list[int]],
        backlog: Callable[[], int],
    ) -> None:
        super().__init__()
        self.settings = settings
        self.metrics = metrics
        self.buckets = buckets
        self.backlog = backlog
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def on_start(self) -> None:
        self.add_future(self._supervise())

    async def on_stop(self) -> None:
        """Closing its stdin ends the process after the chunk in hand; it is killed after the shutdown grace."""
        self._stopping.set()
        process = self._process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), self.settings.shutdown_grace_seconds)
        except TimeoutError:
            log.warning("publisher process did not stop within the shutdown grace; killing it")
            process.kill()
            await process.wait()

    async def _supervise(self) -> None:
        delay = FIRST_RESTART_SECONDS
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                process = self._process = await asyncio.create_subprocess_exec(
                    *COMMAND, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=RELAY_LINE_LIMIT
                )
            except OSError as exc:  # no process could be started (out of memory, process limit)
                ended = f"could not start: {exc}"
            else:
                log.info("publisher process started", extra={"pid": process.pid})
                assert process.stdin is not None and process.stdout is not None
                feeding = asyncio.ensure_future(self._feed(process.stdin))
                relaying = asyncio.ensure_future(self._relay(process.stdout))
                ended = f"exit code {await process.wait()}"
                feeding.cancel()
                await relaying
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_SECONDS:
                delay = FIRST_RESTART_SECONDS
            self.metrics.publisher_restarts.inc()
            log.error("publisher process ended (%s); starting it again in %.0f s", ended, delay)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, LONGEST_RESTART_SECONDS)

    async def _feed(self, stdin: asyncio.StreamWriter) -> None:
        busy = 1.0  # not measured yet: busy, so a new publisher starts paced
        since, cpu_since = time.monotonic(), time.process_time()
        while True:
            state = {"buckets": self.buckets(), "backlog": self.backlog(), "busy": round(busy, 3)}
            stdin.write(json.dumps(state).encode() + b"\n")
            try:
                await stdin.drain()
            except ConnectionError:  # the process is gone: _supervise sees it exit
                return
            await asyncio.sleep(min(FEED_SECONDS, self.settings.worker_emit_interval_seconds))
            now, cpu = time.monotonic(), time.process_time()
            busy = (cpu - cpu_since) / (now - since)  # the worker's share of a core since the line before
            since, cpu_since = now, cpu

    async def _relay(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            try:
                metrics_relay.apply(self.metrics, metrics_relay.decode(line))
            except ValueError as exc:
                log.warning("ignoring a line from the publisher process (%s): %r", exc, line[:200])
