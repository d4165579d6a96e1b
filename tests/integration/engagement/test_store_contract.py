"""One contract for every engagement store (pyeventsourcing's recorder test cases are the model): the same
random streams, mapped by the worker's own `plan`, go through the store under test and through the in-memory
statement (`MemoryStore`, whose merges are model/state.apply) in the same batches, and every employee's raw
fields must be identical, including replays of offsets already applied, events too late for any window,
several source partitions and an erasure followed by a replay. `StoreContract` holds the tests; each store
is one subclass that says how to make it."""

from __future__ import annotations

import asyncio
import random
import zlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import pytest
import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2

from services.engagement.adapters.redis_store import RedisStore, Writes
from services.engagement.model.config import load_model
from services.engagement.model.figures import figures
from services.engagement.model.state import DAY_MS, PRUNE_SLACK_DAYS, Applied, State
from services.engagement.worker.handler import Record, plan
from tests.conftest import RedisServer
from tests.unit.engagement.builders import DAY, event, mixed_history, post, react
from tests.unit.engagement.fakes import MARKER_TTL, PSEUDONYM_KEY, MemoryStore, expected_states

MODEL = load_model()
KEEP = MODEL.keep_days
WINDOWS = MODEL.leaderboards.windows
END = 1_767_225_600  # 2026-01-01
NOW_MS = (END + DAY) * 1000
PARTITIONS = 4
SEEDS = [1, 2, 3]
CAUGHT_UP = 1 << 30  # a publisher cursor beyond every day: days leave as soon as no window reads them


class Store(Protocol):
    """What the worker's handler and the contract need of a store."""

    async def apply(self, writes: Writes, activity: dict[tuple[str, int], set[int]], newest_ms: int) -> Applied: ...

    async def forget(self, employee: str, windows: Sequence[str]) -> None: ...

    async def read_states(self, employees: Sequence[str]) -> dict[str, State | None]: ...

    async def forgotten(self, employees: Sequence[str]) -> set[str]: ...

    async def watermark(self) -> int: ...

    async def set_published_day(self, day: int) -> None: ...


@dataclass
class Topic:
    """Records as the interactions topic holds them: keyed by employee, each partition's offsets ascending."""

    partitions: list[list[Record]]

    @classmethod
    def of(cls, events: Sequence[envelope_pb2.Envelope]) -> Topic:
        partitions: list[list[Record]] = [[] for _ in range(PARTITIONS)]
        for env in events:
            key = env.employee_id.encode()
            partition = zlib.crc32(key) % PARTITIONS
            records = partitions[partition]
            records.append(Record(partition, len(records), key, env.SerializeToString(), 0))
        return cls(partitions)

    @property
    def employees(self) -> list[str]:
        """Everyone an event writes to, the forgotten included."""
        return sorted({e for records in self.partitions for r in records for e in plan([r], NOW_MS, 0).writes})

    def deliver(self, rng: random.Random, replays: int = 3) -> list[list[Record]]:
        """Batches as consumers would read them: partitions interleaved at random, each in offset order, and
        `replays` times a partition read again from an earlier offset (a crash before the commit, a
        rebalance, a group reset)."""
        position = [0] * len(self.partitions)
        batches: list[list[Record]] = []
        while True:
            open_ = [p for p, records in enumerate(self.partitions) if position[p] < len(records)]
            if not open_:
                return batches
            batch: list[Record] = []
            for p in rng.sample(open_, rng.randint(1, len(open_))):
                take = rng.randint(1, 40)
                batch += self.partitions[p][position[p] : position[p] + take]
                position[p] += take
                if replays and rng.random() < 0.2:
                    replays -= 1
                    position[p] = rng.randrange(position[p])
            batches.append(batch)


def history(seed: int) -> list[envelope_pb2.Envelope]:
    """130 days of a dozen people in shuffled order: many events arrive after others more than the longest
    window newer (late), and one employee is forgotten half-way."""
    rng = random.Random(seed)
    events = list(mixed_history(employees=12, days=130, per_day=25, end_seconds=END, seed=seed))
    rng.shuffle(events)
    events.insert(len(events) // 2, event("EmployeeForgotten", "e0003", END - 10 * DAY))
    return events


class StoreContract(ABC):
    """The tests every store must pass; a subclass gives `make_store` (several stores are independent)."""

    @abstractmethod
    async def make_store(self) -> Store: ...

    @abstractmethod
    async def raw_fields(self, store: Store, employee: str) -> dict[str, str]: ...

    async def feed(self, store: Store, batches: Sequence[Sequence[Record]]) -> list[Applied]:
        """What the worker's handler does with each batch: plan, erasures, then one write."""
        results = []
        for batch in batches:
            work = plan(batch, NOW_MS, 0)
            assert not work.dead
            for employee in work.forget:
                await store.forget(employee, WINDOWS)
            results.append(await store.apply(work.writes, work.activity, work.newest_ms))
        return results

    async def assert_same_as_the_statement(
        self, batches: Sequence[Sequence[Record]], employees: Sequence[str], published: int = CAUGHT_UP
    ) -> tuple[Store, list[Applied]]:
        """Feeds a new store and the statement the same batches, the publisher's cursor at `published`;
        returns the store and each call's counts."""
        store, statement = await self.make_store(), MemoryStore(KEEP)
        await store.set_published_day(published)
        await statement.set_published_day(published)
        counts = await self.feed(store, batches)
        assert counts == await self.feed(statement, batches)
        for employee in employees:
            assert await self.raw_fields(store, employee) == statement.fields.get(employee, {}), employee
        assert await store.watermark() == statement.watermark_ms
        return store, counts

    @pytest.mark.parametrize("seed", SEEDS)
    async def test_random_streams_with_replays_late_events_and_an_erasure_leave_identical_fields(
        self, seed: int
    ) -> None:
        topic = Topic.of(history(seed))
        batches = topic.deliver(random.Random(seed))
        store, counts = await self.assert_same_as_the_statement(batches, topic.employees)
        assert sum(c.duplicates for c in counts) > 0 and sum(c.late for c in counts) > 0  # the stream has both
        assert all(topic.partitions) and "e0003" in topic.employees
        assert await self.raw_fields(store, "e0003") == {}  # erased: only the keyed marker that refuses merges

    async def test_replaying_every_offset_again_changes_no_field(self) -> None:
        topic = Topic.of(history(4))
        store, _ = await self.assert_same_as_the_statement(topic.deliver(random.Random(4)), topic.employees)
        before = {e: await self.raw_fields(store, e) for e in topic.employees}
        again = await self.feed(store, topic.deliver(random.Random(5), replays=0))
        assert sum(c.applied for c in again) == 0 and sum(c.late for c in again) == 0
        assert sum(c.duplicates for c in again) > 0
        assert {e: await self.raw_fields(store, e) for e in topic.employees} == before

    async def test_a_forgotten_employee_stays_gone_when_their_events_are_replayed(self) -> None:
        t = END - DAY
        events = [post("a", t), react("b", "a", t + 1), react("a", "b", t + 2), event("EmployeeForgotten", "a", t + 3)]
        events += [react("b", "a", t + 4), post("a", t + 5)]
        topic = Topic.of(events)
        store, _ = await self.assert_same_as_the_statement(topic.deliver(random.Random(1), replays=0), ["a", "b"])
        assert await self.raw_fields(store, "a") == {}
        replayed = await self.feed(store, topic.deliver(random.Random(2), replays=0))
        assert await self.raw_fields(store, "a") == {}
        assert (await store.read_states(["a"]))["a"] is None
        assert sum(c.applied for c in replayed) == 0
        assert (await store.read_states(["b"]))["b"] is not None
        assert await store.forgotten(["a", "b", "never-seen"]) == {"a", "never-seen"}

    async def test_an_event_older_than_the_longest_window_behind_the_newest_is_late(self) -> None:
        newest = END - DAY
        kept, dropped = newest - (KEEP - 1) * DAY, newest - KEEP * DAY
        (records,) = filter(None, Topic.of([post("a", newest), post("a", kept), post("a", dropped)]).partitions)
        store, counts = await self.assert_same_as_the_statement([records[:1], records[1:]], ["a"])
        assert [c.late for c in counts] == [0, 1]
        state = (await store.read_states(["a"]))["a"]
        assert state is not None and sorted(state.daily) == [kept // DAY, newest // DAY]

    async def test_one_write_from_several_partitions_drops_old_days_like_the_statement(self) -> None:
        """In one batch, b's reaction (b's partition) moves a's newest day far enough to drop a's oldest day,
        then a's own post (a's partition) one day further: a's next-oldest day must go or stay alike in both."""
        old = END // DAY - 300
        dropping = old + KEEP + PRUNE_SLACK_DAYS
        events = [post("a", old * DAY), post("a", (old + PRUNE_SLACK_DAYS + 1) * DAY)]
        topic = Topic.of([*events, react("b", "a", dropping * DAY), post("a", (dropping + 1) * DAY)])
        a, b = topic.partitions[zlib.crc32(b"a") % PARTITIONS], topic.partitions[zlib.crc32(b"b") % PARTITIONS]
        assert a is not b
        await self.assert_same_as_the_statement([a[:2], [*b, *a[2:]]], ["a", "b"])

    async def test_days_the_publisher_has_not_walked_yet_stay(self) -> None:
        """An import runs far ahead of the publisher: the days its next figures read are not dropped, so the
        figures as of its day are those of the history up to that day."""
        old = END // DAY - 300
        events = [post("a", (old + d) * DAY) for d in range(0, 2 * KEEP + 3 * PRUNE_SLACK_DAYS, 5)]
        (records,) = filter(None, Topic.of(events).partitions)
        store, _ = await self.assert_same_as_the_statement([records[:3], records[3:]], ["a"], published=old + 2)
        state = (await store.read_states(["a"]))["a"]
        assert state is not None and min(state.daily) == old
        upto = Topic.of([e for e in events if e.occurred_at.seconds < (old + 3) * DAY])
        alone = (await asyncio.to_thread(expected_states, [r for rs in upto.partitions for r in rs], MODEL))["a"]
        assert figures(state, old + 2, MODEL) == figures(alone, old + 2, MODEL)
        moved, _ = await self.assert_same_as_the_statement([records], ["a"], published=old + KEEP + PRUNE_SLACK_DAYS)
        kept = (await moved.read_states(["a"]))["a"]
        assert kept is not None and min(kept.daily) > old

    async def test_the_figures_do_not_depend_on_delivery(self) -> None:
        """Two deliveries of one stream, and all of it at once (`expected_states`): the same figures."""
        topic = Topic.of(history(6))
        first, second = await self.make_store(), await self.make_store()
        await self.feed(first, topic.deliver(random.Random(6)))
        await self.feed(second, topic.deliver(random.Random(7)))
        as_of = max(e.occurred_at.seconds for e in history(6)) * 1000 // DAY_MS
        one = flat(await first.read_states(topic.employees), as_of)
        assert one and one == pytest.approx(flat(await second.read_states(topic.employees), as_of))
        everything = [r for records in topic.partitions for r in records]
        at_once = await asyncio.to_thread(expected_states, everything, MODEL)  # it runs a loop of its own
        assert one == pytest.approx(flat(dict(at_once), as_of))


def flat(states: dict[str, State | None], as_of: int) -> dict[str, float]:
    """Every figure of every employee by name (approx compares flat mappings)."""
    out: dict[str, float] = {}
    for employee, state in states.items():
        if state is not None:
            figs = figures(state, as_of, MODEL)
            out |= {f"{employee} {name}": value for name, value in figs.signals.items()}
            out |= {f"{employee} {w} {c}": v for w, scores in figs.windows.items() for c, v in scores.items()}
    return out


class TestMemoryStore(StoreContract):
    async def make_store(self) -> Store:
        return MemoryStore(KEEP)

    async def raw_fields(self, store: Store, employee: str) -> dict[str, str]:
        assert isinstance(store, MemoryStore)
        return dict(store.fields.get(employee, {}))


class TestRedisStore(StoreContract):
    """On the real redis-server: each store made in a test gets a database of its own."""

    @pytest.fixture(autouse=True)
    async def _server(self, redis_server: RedisServer, redis_url: str) -> AsyncIterator[None]:
        self.server = redis_server
        self.clients: list[aioredis.Redis] = []
        yield
        for client in self.clients:
            await client.aclose()

    async def make_store(self) -> Store:
        client = aioredis.Redis.from_url(self.server.url(len(self.clients)))
        self.clients.append(client)
        return RedisStore(client, KEEP, PSEUDONYM_KEY, MARKER_TTL)

    async def raw_fields(self, store: Store, employee: str) -> dict[str, str]:
        assert isinstance(store, RedisStore)
        return await store.raw_fields(employee)
