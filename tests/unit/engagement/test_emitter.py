"""The emitter's rounds and catch-up policy, against an in-memory store: chunks, at most one figure per
employee and round, stretched rounds and deferred day rollovers while the consumer is far behind, and every
final figure published once caught up."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from catalyst.events.v1 import envelope_pb2
from prometheus_client import CollectorRegistry

from services.engagement.config import EngagementWorkerSettings, load_scoring
from services.engagement.emitter import Emitter
from services.engagement.metrics import WorkerMetrics
from services.engagement.retrying import Retrying
from services.engagement.scoring import DAY_MS, EmployeeState
from services.engagement.store import EngagementStore

CFG = load_scoring()
DAY = 20_000
BACKLOG_LIMIT = 1000
CATCHUP_SECONDS = 15.0


@dataclass
class FakeStore:
    """The store calls the emitter makes, in memory; a read of states takes `read_seconds` of the clock."""

    clock: FakeClock
    states: dict[str, EmployeeState] = field(default_factory=dict)
    dirty_sets: dict[int, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    taking: dict[int, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    active: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    rolled: dict[int, int] = field(default_factory=dict)
    rollovers: list[tuple[int, int]] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    read_seconds: float = 0.0
    watermark_ms: int = DAY * DAY_MS + 3_600_000
    during_read: list[str] = field(default_factory=list)  # employees changed while a chunk is read (bucket 0)
    untakes: bool = True

    def change(self, bucket: int, employee: str, day: int = DAY) -> None:
        """What an applied batch does: a new state version, marked dirty (a mark already there stays)."""
        previous = self.states.get(employee)
        changes = previous.changes + 1 if previous else 1
        self.states[employee] = EmployeeState(days={day: [1] + [0] * 13}, as_of_day=day, changes=changes)
        self.dirty_sets[bucket].setdefault(employee, self.clock.now)
        if employee not in self.active[bucket]:
            self.active[bucket].append(employee)

    async def watermark(self) -> int:
        return self.watermark_ms

    async def dirty(self, bucket: int, limit: int, until: float) -> list[tuple[str, float]]:
        """lua.TAKE_DIRTY: the chunk taken before, else the oldest marks up to `until`, moved to the taking set."""
        if not self.taking[bucket]:
            marked = [(e, score) for e, score in self.dirty_sets[bucket].items() if score <= until]
            oldest = sorted(marked, key=lambda kv: kv[1])[:limit]
            for employee, score in oldest:
                del self.dirty_sets[bucket][employee]
                self.taking[bucket][employee] = score
        return sorted(self.taking[bucket].items(), key=lambda kv: kv[1])[:limit]

    async def read_states(self, employees: Sequence[str]) -> dict[str, EmployeeState | None]:
        self.chunks.append(len(employees))
        self.clock.now += self.read_seconds
        states = {e: self.states.get(e) for e in employees}
        for employee in self.during_read:
            self.change(0, employee)
        return states

    async def published(self, bucket: int, done: Sequence[tuple[str, float]], boards: Sequence[Any]) -> None:
        for employee, score in done:  # lua.UNTAKE: only the mark that was taken
            if self.untakes and self.taking[bucket].get(employee) == score:
                del self.taking[bucket][employee]

    async def rollover(self, bucket: int, day: int) -> int:
        if self.rolled.get(bucket, -1) >= day:
            return 0
        self.rolled[bucket] = day
        self.rollovers.append((bucket, day))
        for employee in self.active[bucket]:
            self.dirty_sets[bucket].setdefault(employee, self.clock.now)
        return len(self.active[bucket])


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    emitter: Emitter
    store: FakeStore
    clock: FakeClock
    backlog: list[int]
    sent: dict[str, list[int]]  # employee -> versions published, in order

    def at_day(self, day: int) -> None:
        self.store.watermark_ms = day * DAY_MS + 3_600_000

    async def drain(self, buckets: Sequence[int] = (0, 1)) -> int:
        """Emit rounds, a second apart, until every dirty set is empty; returns how many rounds it took."""
        for rounds in range(1, 1000):
            self.clock.now += 1.0
            await self.emitter.run_once(buckets)
            if not any(self.store.dirty_sets[b] or self.store.taking[b] for b in buckets):
                return rounds
        raise AssertionError("dirty sets never drained")


def make_rig(backlog: int = 0, read_seconds: float = 0.0) -> Rig:
    settings = EngagementWorkerSettings(
        interactions_partitions=2,
        worker_emit_interval_seconds=1.0,
        worker_emit_chunk=25,
        worker_emit_catchup_backlog=BACKLOG_LIMIT,
        worker_emit_catchup_interval_seconds=CATCHUP_SECONDS,
    )
    metrics = WorkerMetrics(CollectorRegistry())
    clock = FakeClock()
    store = FakeStore(clock, read_seconds=read_seconds)
    sent: dict[str, list[int]] = defaultdict(list)

    async def publish(topic: str, key: bytes, value: bytes | None) -> asyncio.Future[None]:
        env = envelope_pb2.Envelope.FromString(value or b"")
        sent[key.decode()].append(env.score_changed.version & 0xFFFFFFFF)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    level = [backlog]
    emitter = Emitter(
        cast(EngagementStore, store),
        publish,
        settings,
        CFG,
        metrics,
        Retrying(metrics, 1.0),
        backlog=lambda: level[0],
        clock=clock,
    )
    return Rig(emitter, store, clock, level, sent)


async def test_caught_up_publishes_every_dirty_employee_in_small_chunks() -> None:
    rig = make_rig(backlog=0)
    for n in range(60):
        rig.store.change(n % 2, f"e{n}")
    assert await rig.emitter.run_once([0, 1]) == 60
    assert max(rig.store.chunks) <= 25
    assert sorted(rig.sent) == sorted(f"e{n}" for n in range(60))


async def test_catching_up_publishes_at_most_once_per_catchup_interval() -> None:
    rig = make_rig(backlog=50_000)
    rig.store.change(0, "a")
    assert await rig.emitter.run_once([0, 1]) == 1  # the first round runs at once
    for _ in range(5):
        rig.store.change(0, "a")
        rig.clock.now += 1.0
        assert await rig.emitter.run_once([0, 1]) == 0  # newer figures coalesce meanwhile
    rig.clock.now += CATCHUP_SECONDS
    assert await rig.emitter.run_once([0, 1]) == 1
    assert rig.sent["a"] == [1, 6]


async def test_unknown_backlog_counts_as_catching_up() -> None:
    rig = make_rig(backlog=-1)
    rig.store.change(0, "a")
    await rig.emitter.run_once([0, 1])
    rig.store.change(0, "a")
    rig.clock.now += 1.0
    assert await rig.emitter.run_once([0, 1]) == 0
    assert rig.store.rollovers == []


async def test_day_rollover_waits_until_caught_up_then_runs_once_for_the_current_day() -> None:
    rig = make_rig(backlog=50_000)
    for n in range(10):
        rig.store.change(n % 2, f"e{n}")
    for day in range(DAY, DAY + 40):  # a backfill through 40 days of history
        rig.at_day(day)
        rig.clock.now += 1.0
        await rig.emitter.run_once([0, 1])
    assert rig.store.rollovers == []
    rig.backlog[0] = 0
    await rig.drain()
    assert sorted(rig.store.rollovers) == [(0, DAY + 39), (1, DAY + 39)]
    rig.clock.now += 1.0
    await rig.emitter.run_once([0, 1])
    assert len(rig.store.rollovers) == 2  # the same day never rolls over twice
    rig.at_day(DAY + 40)
    await rig.emitter.run_once([0, 1])
    assert sorted(rig.store.rollovers[-2:]) == [(0, DAY + 40), (1, DAY + 40)]


async def test_rollover_republishes_every_active_employee_once_caught_up() -> None:
    rig = make_rig(backlog=0)
    for n in range(200):
        rig.store.active[n % 2].append(f"e{n}")
        rig.store.states[f"e{n}"] = EmployeeState(days={DAY: [0] * 14}, as_of_day=DAY)
    assert await rig.emitter.run_once([0, 1]) == 200
    assert rig.store.rollovers == [(0, DAY), (1, DAY)]
    assert max(rig.store.chunks) <= 25


async def test_a_round_publishes_an_employee_at_most_once_and_later_marks_wait_for_the_next_round() -> None:
    rig = make_rig(backlog=0, read_seconds=0.01)
    for n in range(60):
        rig.store.change(0, f"e{n}")
    rig.store.during_read = ["e0", "e1"]  # they keep interacting while the round publishes
    assert await rig.emitter.run_once([0]) == 60
    assert rig.sent["e0"] == [1]
    assert set(rig.store.dirty_sets[0]) == {"e0", "e1"}
    rig.store.during_read = []
    rig.clock.now += 1.0
    assert await rig.emitter.run_once([0]) == 2
    assert rig.sent["e0"][-1] == rig.store.states["e0"].changes


async def test_a_chunk_that_is_handed_out_again_ends_the_round_for_its_bucket() -> None:
    rig = make_rig(backlog=0)
    rig.store.untakes = False  # published, but the taking set keeps the chunk
    for n in range(60):
        rig.store.change(n % 2, f"e{n}")
    assert await rig.emitter.run_once([0, 1]) == 100  # 25 of each bucket, then the same 25 once more


async def test_a_clock_set_back_does_not_hold_up_catch_up_rounds() -> None:
    rig = make_rig(backlog=50_000)
    rig.store.change(0, "a")
    assert await rig.emitter.run_once([0, 1]) == 1
    rig.clock.now -= 3600.0
    rig.store.change(0, "a")
    assert await rig.emitter.run_once([0, 1]) == 1


async def test_after_a_backfill_the_final_figures_of_everyone_are_published() -> None:
    rig = make_rig(backlog=50_000, read_seconds=0.01)
    for step in range(30):
        for n in range(100):
            if (n + step) % 3:
                rig.store.change(n % 2, f"e{n}")
        rig.clock.now += 1.0
        await rig.emitter.run_once([0, 1])
    during = sum(len(v) for v in rig.sent.values())
    rig.backlog[0] = 0
    await rig.drain()
    assert during <= 2 * 100  # two catch-up rounds in 30 s, at most one figure per employee each
    assert {e: versions[-1] for e, versions in rig.sent.items()} == {
        e: state.changes for e, state in rig.store.states.items()
    }


async def test_a_catch_up_round_is_one_chunk_per_bucket() -> None:
    rig = make_rig(backlog=50_000)
    for n in range(120):
        rig.store.change(n % 2, f"e{n}")
    assert await rig.emitter.run_once([0, 1]) == 50  # 25 of each bucket: the backfill needs Redis more
