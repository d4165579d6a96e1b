"""The publisher's round on the in-memory store: one ScoreChanged per dirty employee with the model's figures,
boards indexed, nothing for the forgotten."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from catalyst.events.v1 import envelope_pb2
from prometheus_client import CollectorRegistry

from services.engagement.adapters.retrying import Retrying
from services.engagement.model.config import load_model
from services.engagement.model.figures import figures
from services.engagement.model.state import OPT_OUT
from services.engagement.publisher.publisher import Publisher, PublisherMetrics, pause_after
from services.engagement.publisher.settings import PublisherSettings
from services.engagement.worker.handler import plan
from tests.policies import ranking_policy
from tests.unit.engagement.builders import DAY, post, react
from tests.unit.engagement.fakes import MemoryStore
from tests.unit.engagement.test_model import END, TODAY, records

MODEL = load_model()


async def nowhere(topic: str, key: bytes, value: bytes) -> None:
    """Distributions are not what these tests look at."""


def test_a_round_publishes_each_dirty_employee_once_with_the_models_figures() -> None:
    """Under the default policy: no boards at all."""
    store = MemoryStore(MODEL.keep_days)
    sent: list[tuple[bytes, bytes | None]] = []

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        sent.extend(messages)

    async def run() -> int:
        t = END - DAY // 2
        work = plan(records([post("a", t), react("b", "a", t), post("c", t)]), 1 << 62, 0)
        await store.apply(work.writes, work.activity, work.newest_ms)
        await store.forget("c", [])
        metrics = PublisherMetrics(CollectorRegistry())
        publisher = Publisher(store, publish, nowhere, MODEL, PublisherSettings(), metrics, Retrying(metrics, 0.1))
        return await publisher.run_once()

    assert asyncio.run(run()) == 2
    envelopes = {key.decode(): envelope_pb2.Envelope.FromString(value) for key, value in sent if value}
    assert set(envelopes) == {"a", "b"}
    state = asyncio.run(store.read_states(["a"]))["a"]
    expected = figures(state, END // DAY - 1, MODEL)
    assert envelopes["a"].score_changed.windows["30d"].total == expected.windows["30d"]["total"]
    assert dict(envelopes["a"].score_changed.signals) == expected.signals
    assert store.dirty == [] and store.boards == {}


def test_under_a_ranking_policy_only_who_opted_in_is_shown_on_the_boards(tmp_path: Path) -> None:
    store = MemoryStore(MODEL.keep_days)
    store.fields["a"] = {OPT_OUT: "0"}
    store.fields["b"] = {OPT_OUT: "1"}

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        """Nothing to check on the topic here."""

    async def run() -> None:
        t = END - DAY // 2
        work = plan(records([post("a", t), react("b", "a", t), post("c", t)]), 1 << 62, 0)
        await store.apply(work.writes, work.activity, work.newest_ms)
        metrics = PublisherMetrics(CollectorRegistry())
        settings = PublisherSettings(policy_file=ranking_policy(tmp_path))
        await Publisher(store, publish, nowhere, MODEL, settings, metrics, Retrying(metrics, 0.1)).run_once()

    asyncio.run(run())
    assert {e: b.visible for e, b in store.boards.items()} == {"a": True, "b": False, "c": False}


def test_a_long_round_is_followed_by_a_longer_pause_while_the_worker_imports() -> None:
    assert pause_after(0.01, 1.0, 0.25, importing=True) == 1.0  # a short round: the interval
    assert pause_after(4.0, 1.0, 0.25, importing=True) == 12.0  # importing history: a quarter of the time
    assert pause_after(4.0, 1.0, 0.25, importing=False) == 1.0  # caught up: full speed


def test_days_the_watermark_crossed_are_published_in_turn_each_as_of_its_end() -> None:
    """A burst reaching three days further: a's figures as of each day, in order, dated at each past day's end,
    each completed day followed by the company's distribution of that day; the cursor moves to the newest day;
    a second round publishes nothing."""
    store = MemoryStore(MODEL.keep_days)
    sent: list[envelope_pb2.Envelope] = []
    log: list[tuple[str, int]] = []  # (what, day) in the order it went out

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        sent.extend(envelope_pb2.Envelope.FromString(value) for _, value in messages if value)
        log.extend(("figures", e.score_changed.version >> 32) for e in sent[len(sent) - len(messages) :])

    async def broadcast(topic: str, key: bytes, value: bytes) -> None:
        log.append(("distribution", envelope_pb2.Envelope.FromString(value).figures_distribution.day))

    first = TODAY - 5

    async def run() -> tuple[int, int]:
        events = [post("a", first * DAY + 600), react("b", "a", (first + 3) * DAY + 900)]
        work = plan(records(events), 1 << 62, 0)
        await store.apply(work.writes, work.activity, work.newest_ms)
        metrics = PublisherMetrics(CollectorRegistry())
        publisher = Publisher(store, publish, broadcast, MODEL, PublisherSettings(), metrics, Retrying(metrics, 0.1))
        return await publisher.run_once(), await publisher.run_once()

    assert asyncio.run(run())[1] == 0
    assert log == [
        *[("figures", first)] * 2,
        ("distribution", first),
        *[("figures", first + 1)] * 2,
        ("distribution", first + 1),
        *[("figures", first + 2)] * 2,
        ("distribution", first + 2),
        *[("figures", first + 3)] * 2,
    ]
    days = [(e.employee_id, e.score_changed.version >> 32) for e in sent]
    assert [d for e, d in days if e == "a"] == [first, first + 1, first + 2, first + 3]
    assert [d for e, d in days if e == "b"] == [first, first + 1, first + 2, first + 3]  # zero at first
    a = [e for e in sent if e.employee_id == "a"]
    assert a[1].occurred_at.ToMilliseconds() == (first + 2) * DAY * 1000 - 1  # the end of first + 1
    assert a[-1].occurred_at.ToMilliseconds() == ((first + 3) * DAY + 900) * 1000  # today: the newest event
    state = asyncio.run(store.read_states(["a"]))["a"]
    assert state is not None
    for env, day in zip(a, range(first, first + 4), strict=True):
        assert dict(env.score_changed.signals) == figures(state, day, MODEL).signals
    assert store.published_through == first + 3


def test_a_day_that_ends_sends_everyone_as_of_its_end_and_then_the_companys_distribution() -> None:
    """Live: the rounds of a day publish today's marks; once the next day's first event arrives, everyone active is
    published as of the day's end (also who did nothing since), and then the distribution of that day, counting
    the active among them (fewer than the minimum population here: no quantiles)."""
    store = MemoryStore(MODEL.keep_days)
    log: list[envelope_pb2.Envelope] = []

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        log.extend(envelope_pb2.Envelope.FromString(value) for _, value in messages if value)

    async def broadcast(topic: str, key: bytes, value: bytes) -> None:
        assert key == b"distribution"
        log.append(envelope_pb2.Envelope.FromString(value))

    day = TODAY - 2

    async def run() -> None:
        metrics = PublisherMetrics(CollectorRegistry())
        publisher = Publisher(store, publish, broadcast, MODEL, PublisherSettings(), metrics, Retrying(metrics, 0.1))
        for events in ([post("a", day * DAY + 600), post("b", day * DAY + 700)], [post("c", (day + 1) * DAY + 60)]):
            work = plan(records(events), 1 << 62, 0)
            await store.apply(work.writes, work.activity, work.newest_ms)
            await publisher.run_once()

    asyncio.run(run())
    kinds = [(e.WhichOneof("payload"), e.employee_id) for e in log]
    assert kinds[:2] == [("score_changed", "a"), ("score_changed", "b")]  # during the day
    # As of its end: a and b, and c, whose first event came the next day (figures of nothing yet, not active).
    assert sorted(kinds[2:5]) == [("score_changed", "a"), ("score_changed", "b"), ("score_changed", "c")]
    assert all(e.occurred_at.ToMilliseconds() == (day + 1) * DAY * 1000 - 1 for e in log[2:5])
    assert kinds[5] == ("figures_distribution", "")
    spread = log[5].figures_distribution
    assert (spread.day, spread.population, spread.min_population) == (day, 2, MODEL.distribution.min_population)
    assert dict(spread.quantiles) == {}
    assert {k for k, _ in kinds[6:]} == {"score_changed"}  # the new day: everyone active as of it


def test_a_worker_ahead_of_the_watermark_the_round_read_never_makes_a_later_version() -> None:
    """The worker merged a's events of weeks later after the round read the watermark: a goes out as of the
    round's today, so the days still to walk are not skipped by consumers as older versions."""
    store = MemoryStore(MODEL.keep_days)
    sent: list[envelope_pb2.Envelope] = []

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        sent.extend(envelope_pb2.Envelope.FromString(value) for _, value in messages if value)

    first = TODAY - 40

    async def run() -> None:
        work = plan(records([post("a", first * DAY + 600), post("a", (first + 30) * DAY + 600)]), 1 << 62, 0)
        await store.apply(work.writes, work.activity, first * DAY * 1000 + 600_000)  # the watermark the round read
        metrics = PublisherMetrics(CollectorRegistry())
        await Publisher(store, publish, nowhere, MODEL, PublisherSettings(), metrics, Retrying(metrics, 0.1)).run_once()

    asyncio.run(run())
    assert [e.score_changed.version >> 32 for e in sent] == [first]
    state = asyncio.run(store.read_states(["a"]))["a"]
    assert dict(sent[0].score_changed.signals) == figures(state, first, MODEL).signals  # the later post not yet


def test_the_pause_after_an_import_round_ends_once_the_worker_caught_up() -> None:
    """A long round while the worker imports would pause nine times as long; the pause ends when the worker's
    backlog is gone (checked every interval), and at once when asked to stop."""
    store = MemoryStore(MODEL.keep_days)
    backlogs = iter([10**9, 10**9, 0])

    async def backlog() -> int:
        return next(backlogs)

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        """Nothing to publish here."""

    async def run() -> tuple[float, float]:
        metrics = PublisherMetrics(CollectorRegistry())
        settings = PublisherSettings(publisher_interval_seconds=0.01, publisher_cpu_share=0.1)
        publisher = Publisher(
            store, publish, nowhere, MODEL, settings, metrics, Retrying(metrics, 0.1), backlog=backlog
        )
        await publisher.run_once()  # reads the first backlog: importing
        assert publisher.importing
        started = time.monotonic()
        await publisher.rest(3600.0)  # a one-hour round: a pause of nine hours without the check
        caught_up = time.monotonic() - started
        assert not publisher.importing
        publisher.stopping.set()
        publisher.importing = True  # another import begins, and the process is asked to stop
        started = time.monotonic()
        await publisher.rest(3600.0)
        return caught_up, time.monotonic() - started

    caught_up, stopped = asyncio.run(run())
    assert caught_up < 60 and stopped < 60


def test_a_stop_ends_a_long_walk_after_the_chunk_in_hand_and_the_next_round_walks_on() -> None:
    """An import leaves weeks to walk; asked to stop after the first chunk went out, the round ends there (the
    cursor stays before the half-done day, whose marks wait), and the next round publishes the rest in order."""
    store = MemoryStore(MODEL.keep_days)
    days: list[tuple[str, int]] = []
    first = TODAY - 20
    metrics = PublisherMetrics(CollectorRegistry())

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        envelopes = [envelope_pb2.Envelope.FromString(value) for _, value in messages if value]
        days.extend((env.employee_id, env.score_changed.version >> 32) for env in envelopes)
        if len(days) == 1:
            publisher.stopping.set()  # SIGTERM arrives while the first chunk is out

    settings = PublisherSettings(publisher_chunk=1)
    publisher = Publisher(store, publish, nowhere, MODEL, settings, metrics, Retrying(metrics, 0.1))

    async def run() -> tuple[int, int]:
        work = plan(records([post("a", first * DAY), post("b", first * DAY), post("a", TODAY * DAY)]), 1 << 62, 0)
        await store.apply(work.writes, work.activity, work.newest_ms)
        stopped = await publisher.run_once()
        cursor = store.published_through
        publisher.stopping.clear()  # started again
        await publisher.run_once()
        return stopped, cursor

    stopped, cursor = asyncio.run(run())
    assert stopped == 1 and cursor < first
    assert {e for e, d in days if d == first} == {"a", "b"}
    assert [d for e, d in days if e == "a"] == sorted(d for e, d in days if e == "a")
    assert store.published_through == TODAY
