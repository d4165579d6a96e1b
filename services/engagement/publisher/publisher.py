"""Coalesced ScoreChanged events: every employee the worker marked dirty is published at most once per round,
with the figures of their state as of a day of event time (docs/engagement.md, "Publishing").

A round takes chunks of the oldest marks into a taking set, publishes them, waits for the broker, then
updates the leaderboards and removes the chunk; a crash in between publishes the chunk again (at-least-once,
deterministic event ids). The publisher walks event time one day at a time: once a day is over (the
watermark crossed it), everyone active within the longest window is published as of its end (their windowed
figures moved although nothing new happened), then the company's distribution of that day goes to every
partition after them (decision 0025). A history imported in one burst thus gives consumers the same days a
history lived day by day does, and consumers judging a person against colleagues use the same numbers on
every partition. Leaderboards are kept only where the policy has rankings (of the people who opted in);
otherwise none is stored at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from catalyst.events.v1 import envelope_pb2
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common.policy import Rankings, load_policy
from services.engagement.adapters.redis_store import Board, RedisStore
from services.engagement.adapters.retrying import Retrying
from services.engagement.model.config import ScoringModel
from services.engagement.model.distribution import Distribution, distribution
from services.engagement.model.figures import TOTAL, figures, flatten
from services.engagement.model.state import DAY_MS
from services.engagement.publisher.settings import PublisherSettings

log = logging.getLogger(__name__)
PRODUCER = "engagement"
SCORE_CHANGED = "catalyst.events.v1.ScoreChanged"
FIGURES_DISTRIBUTION = "catalyst.events.v1.FiguresDistribution"
DISTRIBUTION_KEY = b"distribution"  # the record key of distributions (compaction keeps the newest per partition)
Publish = Callable[[str, list[tuple[bytes, bytes | None]]], Awaitable[None]]
Broadcast = Callable[[str, bytes, bytes], Awaitable[None]]  # topic, key, value: to every partition of the topic


class PublisherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        p = "catalyst_engagement_publisher_"
        self.score_changes = Counter(p + "score_changes", "ScoreChanged events published", registry=registry)
        self.rollover_marked = Counter(
            p + "rollover_marked", "Employees re-published because event time crossed a day", registry=registry
        )
        self.round_seconds = Histogram(p + "round_seconds", "Time of one publishing round", registry=registry)
        self.redis_latency = Histogram(
            p + "redis_seconds", "Redis round trips, by operation", ["op"], registry=registry
        )
        self.redis_retries = Counter(p + "redis_retries", "Transient Redis faults retried", ["op"], registry=registry)
        self.kafka_retries = Counter(p + "kafka_retries", "Failed publishes retried", ["topic"], registry=registry)


def score_changed(
    employee: str, department: str, opt_out: bool, version: int, windows: dict, signals: dict, ms: int
) -> bytes:
    """The ScoreChanged envelope of one employee's figures; its id is deterministic, so consumers dedupe."""
    return envelope_pb2.Envelope(
        event_id=f"engagement:{employee}:{version}",
        occurred_at={"seconds": ms // 1000, "nanos": ms % 1000 * 1_000_000},
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
    ).SerializeToString()


def figures_distribution(dist: Distribution) -> bytes:
    """The FiguresDistribution envelope of a day; its id names the day, so consumers see a republish as one."""
    ms = (dist.day + 1) * DAY_MS - 1
    return envelope_pb2.Envelope(
        event_id=f"engagement:distribution:{dist.day}",
        occurred_at={"seconds": ms // 1000, "nanos": ms % 1000 * 1_000_000},
        producer=PRODUCER,
        type=FIGURES_DISTRIBUTION,
        figures_distribution=dist.to_pb(),
    ).SerializeToString()


def pause_after(round_seconds: float, interval: float, share: float, importing: bool) -> float:
    """How long to wait before the next round: the interval, or, while the worker imports history, longer after
    a long round, so that publishing takes at most `share` of the time. Once the import is done the figures it
    left go out at full speed."""
    return max(interval, round_seconds * (1 - share) / share) if importing else interval


async def caught_up() -> int:
    """The backlog of a worker that is never behind (a publisher told nothing else)."""
    return 0


class Publisher:
    def __init__(
        self,
        store: RedisStore,
        publish: Publish,
        broadcast: Broadcast,
        model: ScoringModel,
        settings: PublisherSettings,
        metrics: PublisherMetrics,
        retrying: Retrying,
        clock: Callable[[], float] = time.time,
        backlog: Callable[[], Awaitable[int]] = caught_up,
    ) -> None:
        self.store = store
        self.publish = publish
        self.broadcast = broadcast
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.retrying = retrying
        self.clock = clock
        self.backlog = backlog  # records the worker group is behind on the interactions topic
        self.importing = False
        self.visibility = load_policy(settings.policy_file).visibility
        self.stopping = asyncio.Event()  # set: the round ends after the chunk in hand (a stop waits for no walk)

    async def rest(self, round_seconds: float) -> None:
        """Waits before the next round (`pause_after`), in steps of the interval: a stop ends the wait, and so
        does the worker catching up with an import, whose figures then go out at full speed."""
        interval = self.settings.publisher_interval_seconds
        pause = pause_after(round_seconds, interval, self.settings.publisher_cpu_share, self.importing)
        until = time.monotonic() + pause
        while not self.stopping.is_set() and (left := until - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), min(interval, left))
            if self.importing and await self.backlog() <= self.settings.publisher_catchup_backlog:
                self.importing = False
                return

    @property
    def ranks(self) -> bool:
        """Whether the policy has leaderboards at all."""
        return self.visibility.rankings is not Rankings.NONE

    async def start(self) -> None:
        """Boards a former policy or scoring file left behind go before the first round: all of them under a
        policy without rankings, else those of windows the scoring file does not rank."""
        keep = self.model.leaderboards.windows if self.ranks else []
        await self.retrying.redis("drop boards", lambda: self.store.drop_leaderboards(keep))

    async def run_once(self) -> int:
        """One round: every day the watermark crossed since the last round, in order (each completed day with
        everyone active as of its end, then the company's distribution of that day; then everyone active as of
        now), or else today's marks made before the round began, chunk by chunk. A stop ends the round after the
        chunk in hand: a day left half done is walked again by the next round (its marks wait). Returns how many
        ScoreChanged were published."""
        started = time.perf_counter()
        self.importing = await self.backlog() > self.settings.publisher_catchup_backlog
        watermark_ms = await self.retrying.redis("watermark", self.store.watermark)
        if watermark_ms <= 0:
            return 0
        today = watermark_ms // DAY_MS
        cursor = await self.retrying.redis("cursor", self.store.published_day)
        published = 0
        if cursor < 0:
            cursor = await self._first_day(today) - 1  # nothing happened before the oldest day marked
        elif cursor < today:
            published += await self._complete(cursor, watermark_ms)  # the day the last rounds published as today
        for day in range(cursor + 1, today + 1):
            published += await self._complete(day, watermark_ms) if day < today else await self._roll(day, watermark_ms)
            if self.stopping.is_set():
                break
            await self.retrying.redis("cursor", lambda d=day: self.store.set_published_day(d))
        if cursor >= today:
            published += await self._publish_marked(today, watermark_ms)
        self.metrics.round_seconds.observe(time.perf_counter() - started)
        return published

    async def _roll(self, day: int, watermark_ms: int, everyone: list[dict[str, float]] | None = None) -> int:
        """Everyone active within the longest window, as of `day` (their windows moved with the day; for today,
        the days before took the marks of today's first events); their flattened figures go to `everyone`."""
        marked = await self.retrying.redis("rollover", lambda: self.store.rollover(day))
        self.metrics.rollover_marked.inc(marked)
        return await self._publish_marked(day, watermark_ms, everyone)

    async def _complete(self, day: int, watermark_ms: int) -> int:
        """A day that is over: everyone active within the longest window as of its end, then the company's
        distribution of that day to every partition, so a consumer has it before any figure of a later day."""
        everyone: list[dict[str, float]] = []
        published = await self._roll(day, watermark_ms, everyone)
        if self.stopping.is_set():
            return published
        value = figures_distribution(distribution(day, everyone, self.model.distribution))
        topic = self.settings.topic_engagement
        await self.retrying.kafka(topic, lambda: self.broadcast(topic, DISTRIBUTION_KEY, value))
        return published

    async def _first_day(self, today: int) -> int:
        """The oldest day of the employees marked before anything was published (a first import starts there)."""
        employees = await self.retrying.redis("marked", self.store.marked)
        first = today
        size = self.settings.publisher_chunk
        for start in range(0, len(employees), size):
            chunk = employees[start : start + size]
            states = await self.retrying.redis("read", lambda c=chunk: self.store.read_states(c))
            for state in states.values():
                if state is not None and (state.daily or state.paired):
                    first = min(first, *state.daily, *state.paired)
        return first

    async def _publish_marked(self, day: int, watermark_ms: int, everyone: list[dict[str, float]] | None = None) -> int:
        """Publishes, as of `day`, every employee marked before this call (their flattened figures appended to
        `everyone` when given)."""
        now = self.clock()  # marks made from here on wait for the next call
        published = 0
        while not self.stopping.is_set():
            employees = await self.retrying.redis(
                "take", lambda: self.store.take_dirty(self.settings.publisher_chunk, now)
            )
            if not employees:
                return published
            published += await self._publish_chunk(employees, day, watermark_ms, everyone)
        return published

    async def _publish_chunk(
        self, employees: Sequence[str], day: int, watermark_ms: int, everyone: list[dict[str, float]] | None
    ) -> int:
        """Figures as of `day`: a past day's as of its end, today's as of the newest event. Never as of a later
        day, even when the worker has merged later events since the round read the watermark: a later version
        would make consumers skip the days still to walk."""
        states = await self.retrying.redis("read", lambda: self.store.read_states(employees))
        today = watermark_ms // DAY_MS
        topic = self.settings.topic_engagement
        boards = self.model.leaderboards
        messages: list[tuple[bytes, bytes | None]] = []
        indexed: list[Board] = []
        tops: dict[str, int] = {}
        for employee in employees:
            state = states[employee]
            if state is None:
                continue  # forgotten, or never had state
            figs = figures(state, day, self.model)
            version = (day << 32) | state.changes
            occurred = watermark_ms if day >= today else (day + 1) * DAY_MS - 1
            value = score_changed(
                employee, state.department, state.opt_out, version, figs.windows, figs.signals, occurred
            )
            messages.append((employee.encode(), value))
            if everyone is not None:
                everyone.append(flatten(figs.signals, figs.windows))
            if self.ranks:
                totals = {w: figs.windows[w][TOTAL] for w in boards.windows}
                indexed.append(Board(employee, state.department, self.visibility.ranked(state.opted_in), totals))
            tops[employee] = state.top
        if messages:
            await self.retrying.kafka(topic, lambda: self.publish(topic, messages))
            await self._tombstone_if_forgotten([key.decode() for key, _ in messages])
        sizes = (boards.size, boards.department_size)
        await self.retrying.redis("published", lambda: self.store.published(employees, indexed, tops, sizes))
        self.metrics.score_changes.inc(len(messages))
        return len(messages)

    async def _tombstone_if_forgotten(self, employees: Sequence[str]) -> None:
        """An erasure that landed while this chunk was in flight: its tombstone may be older than what was
        just published, so a tombstone goes again after it."""
        forgotten = await self.retrying.redis("forgotten", lambda: self.store.forgotten(employees))
        gone: list[tuple[bytes, bytes | None]] = [(e.encode(), None) for e in employees if e in forgotten]
        if gone:
            topic = self.settings.topic_engagement
            await self.retrying.kafka(topic, lambda: self.publish(topic, gone))
