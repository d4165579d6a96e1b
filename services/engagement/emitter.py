"""Coalesced ScoreChanged events for the dirty employees of a set of buckets: the publisher process's work
(publisher.py), kept apart from the consumer so that publishing never holds up a batch."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from catalyst.events.v1 import envelope_pb2

from services.engagement.config import EngagementWorkerSettings, ScoringConfig
from services.engagement.metrics import WorkerMetrics
from services.engagement.publish import PRODUCER, Publish, publish_all
from services.engagement.retrying import Retrying
from services.engagement.scoring import DAY_MS, figures
from services.engagement.store import EngagementStore

log = logging.getLogger(__name__)
SCORE_CHANGED = "catalyst.events.v1.ScoreChanged"


def score_changed(
    employee: str, department: str, opt_out: bool, version: int, windows: dict, signals: dict, occurred_ms: int
) -> envelope_pb2.Envelope:
    """The ScoreChanged envelope, built in one constructor call (upb converts the nested dicts natively,
    cheaper than filling and copying one message per window)."""
    return envelope_pb2.Envelope(
        event_id=f"engagement:{employee}:{version}",
        occurred_at={"seconds": occurred_ms // 1000, "nanos": occurred_ms % 1000 * 1_000_000},
        producer=PRODUCER,
        type=SCORE_CHANGED,
        employee_id=employee,
        department_id=department,
        score_changed={
            "employee_id": employee,
            "department_id": department,
            "ranking_opt_out": opt_out,
            "version": version,
            "windows": windows,
            "signals": signals,
        },
    )


class Emitter:
    """Publishes coalesced ScoreChanged events for the dirty employees of the buckets it is given.

    A round publishes every employee marked dirty before it began, oldest mark first, at most once: marks made
    meanwhile wait for the next round, so an employee's figures go out at most once per emit interval however
    many events they had. ScoreChanged is compacted (only the newest figures of an employee matter), so while the
    consumer is far behind the end of its partitions (a backfill, a restart after downtime) publishing waits: a
    round of one chunk per bucket runs at most every `worker_emit_catchup_interval_seconds`, and the day-rollover
    re-marking, which would re-publish every active employee once per day of history, runs only once caught up,
    for that day.
    """

    def __init__(
        self,
        store: EngagementStore,
        publish: Publish,
        settings: EngagementWorkerSettings,
        cfg: ScoringConfig,
        metrics: WorkerMetrics,
        retrying: Retrying,
        *,
        backlog: Callable[[], int],
        pace: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publish = publish
        self.settings = settings
        self.cfg = cfg
        self.metrics = metrics
        self.retrying = retrying
        self.backlog = backlog  # records behind the consumer's partition ends: 0 caught up, -1 not known yet
        self.pace = pace  # awaited after each chunk (the publisher's CPU share)
        self.clock = clock  # the dirty marks' clock (seconds since the epoch); the unit tests drive their own
        self._rolled: dict[int, int] = {}
        self._next_catchup_round = float("-inf")

    def catching_up(self) -> bool:
        """True while the consumer is further behind than a few batches (or does not know yet)."""
        backlog = self.backlog()
        return backlog < 0 or backlog > self.settings.worker_emit_catchup_backlog

    async def run_once(self, buckets: Sequence[int]) -> int:
        """One coalescing round over the given buckets; returns how many ScoreChanged were published. The
        buckets take turns chunk by chunk, so a bucket with many marks does not hold up the others. While catching
        up a round is one chunk per bucket: what it publishes is soon out of date, and the backfill needs Redis."""
        if not buckets:
            return 0
        watermark_ms = await self.retrying.redis("emit", self.store.watermark)
        if watermark_ms <= 0:
            return 0
        catching_up = self.catching_up()
        self.metrics.emit_catching_up.set(1 if catching_up else 0)
        if catching_up:
            if not self._catchup_round_due():
                return 0
        else:
            await self._rollover(buckets, watermark_ms // DAY_MS)
        cutoff = self.clock()
        published = 0
        last: dict[int, list[tuple[str, float]]] = {bucket: [] for bucket in buckets}
        while last:
            for bucket in list(last):
                count, entries = await self._publish_chunk(bucket, watermark_ms, cutoff)
                published += count
                if self.pace is not None:
                    await self.pace()
                if catching_up or len(entries) < self.settings.worker_emit_chunk or entries == last[bucket]:
                    if entries and entries == last[bucket]:
                        log.warning("bucket %d handed out the same chunk twice; leaving it to the next round", bucket)
                    del last[bucket]
                else:
                    last[bucket] = entries
        return published

    def _catchup_round_due(self) -> bool:
        """At most one round per catch-up interval (a clock set back counts as due)."""
        now, interval = self.clock(), self.settings.worker_emit_catchup_interval_seconds
        if self._next_catchup_round - interval <= now < self._next_catchup_round:
            return False
        self._next_catchup_round = now + interval
        return True

    async def _rollover(self, buckets: Sequence[int], day: int) -> None:
        """Marks dirty the employees whose windows move on `day` (once per bucket and day reached)."""
        for bucket in buckets:
            if self._rolled.get(bucket, -1) < day:
                marked = await self.retrying.redis("rollover", lambda b=bucket: self.store.rollover(b, day))
                self.metrics.rollover_marked.inc(marked)
                self._rolled[bucket] = day

    async def _publish_chunk(
        self, bucket: int, watermark_ms: int, cutoff: float
    ) -> tuple[int, list[tuple[str, float]]]:
        """Publishes one chunk of the bucket's marks made before `cutoff`; returns how many were published and
        the chunk's marks."""
        chunk = self.settings.worker_emit_chunk
        entries = await self.retrying.redis("emit", lambda: self.store.dirty(bucket, chunk, cutoff))
        if not entries:
            return 0, entries
        employees = [e for e, _ in entries]
        states = await self.retrying.redis("emit", lambda: self.store.read_states(employees))
        day = watermark_ms // DAY_MS
        topic = self.settings.topic_engagement
        messages: list[tuple[bytes, bytes]] = []
        boards = []
        for employee in employees:
            state = states[employee]
            if state is None:
                continue
            as_of = max(state.as_of_day, day)
            figs = figures(state, as_of, self.cfg)
            version = (as_of << 32) | state.changes
            occurred = max(watermark_ms, as_of * DAY_MS)
            env = score_changed(
                employee, state.department, state.opt_out, version, figs.windows, figs.signals, occurred
            )
            messages.append((employee.encode(), env.SerializeToString()))
            totals = {w: figs.windows[w]["total"] for w in self.cfg.leaderboards.windows}
            boards.append((employee, state.department, state.opt_out, state.as_of_day, totals))

        if messages:
            await self.retrying.kafka(topic, lambda: publish_all(self.publish, topic, messages))
        await self.retrying.redis("emit", lambda: self.store.published(bucket, entries, boards))
        self.metrics.score_changes.inc(len(messages))
        return len(messages), entries
