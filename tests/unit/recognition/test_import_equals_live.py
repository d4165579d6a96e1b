"""A history imported in one burst gives the badges the same history gives lived day by day (issue 26 item 4,
decision 0021): the worker's own plan and merges (on the in-memory store), the real publisher walking event
time, and recognition's evaluation of every ScoreChanged in the order it is published.

In the burst the worker runs weeks ahead of the publisher, which publishes now and then; day by day, the
publisher runs after every day (and once in the middle of some days). Both must leave the same holdings, with
grants, confirmations, at-risk periods and revocations on the same days as a reference that evaluates the
figures of each day's end directly.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from catalyst.events.v1 import envelope_pb2, scores_pb2
from prometheus_client import CollectorRegistry

from services.engagement.adapters.retrying import Retrying
from services.engagement.model.config import load_model
from services.engagement.model.figures import figures, flatten
from services.engagement.publisher.publisher import Publisher, PublisherMetrics
from services.engagement.publisher.settings import PublisherSettings
from services.engagement.worker.handler import Record, plan
from services.recognition.handlers import COMPONENTS
from services.recognition.rules import Action, Holding, Rules, Tier, evaluate, load_rules
from tests.unit.engagement.builders import DAY, post, react
from tests.unit.engagement.fakes import MemoryStore, expected_states

MODEL = load_model()
START_DAY = 20_400  # 2025-11-07
DAYS = 75
PEOPLE = [f"e{n}" for n in range(8)]

RULES = {
    "version": 1,
    "coverage": {"badge": "creator"},
    "badges": {
        "creator": {
            "name": "Creator",
            "description": "posts, confirmed and kept",
            "tiers": {
                "bronze": {
                    "grace_days": 5,
                    "confirm_days": 3,
                    "criteria": [{"metric": "posts_30d", "grant": 12, "keep": 8, "label": "posts in 30 days"}],
                },
                "silver": {
                    "grace_days": 4,
                    "confirm_days": 6,
                    "criteria": [
                        {"metric": "posts_30d", "grant": 20, "keep": 14, "label": "posts in 30 days"},
                        {"metric": "distinct_reach_30d", "grant": 3, "keep": 2, "label": "colleagues reached"},
                    ],
                },
            },
        }
    },
}

Holdings = dict[tuple[str, Tier], Holding]
Outcome = dict[str, dict[tuple[str, Tier], tuple[bool, int, date | None, date | None]]]


@pytest.fixture
def rules(tmp_path: Path) -> Rules:
    path = tmp_path / "badges.yaml"
    path.write_text(yaml.safe_dump(RULES))
    return load_rules(path)


def history(seed: int) -> list[envelope_pb2.Envelope]:
    """Bursts and quiet spells per person (so tiers are confirmed, interrupted, put at risk and revoked), with
    reactions from colleagues; in time order, as an export is read."""
    rng = random.Random(seed)
    events = []
    for person in PEOPLE:
        rate = 0.0
        for day in range(START_DAY, START_DAY + DAYS):
            if rng.random() < 0.12:
                rate = rng.choice([0.0, 0.2, 0.5, 0.9, 1.4])
            for _ in range(int(rate * 2) + (rng.random() < rate % 1)):
                second = day * DAY + rng.randrange(DAY)
                events.append(post(person, second))
                if rng.random() < 0.5:
                    events.append(react(rng.choice([p for p in PEOPLE if p != person]), person, second + 1))
    return sorted(events, key=lambda e: (e.occurred_at.seconds, e.employee_id))


def as_records(events: list[envelope_pb2.Envelope], first_offset: int) -> list[Record]:
    """One partition, offsets in delivery order (the worker's exactly-once marks need them ascending)."""
    return [Record(0, first_offset + n, e.employee_id.encode(), e.SerializeToString(), 0) for n, e in enumerate(events)]


class Pipeline:
    """The worker's merges on the in-memory store, the real publisher, and the ScoreChanged it published."""

    def __init__(self) -> None:
        self.store = MemoryStore(MODEL.keep_days)
        self.published: list[envelope_pb2.Envelope] = []
        self.distributions: list[scores_pb2.FiguresDistribution] = []  # in the order they went out
        self.offset = 0
        metrics = PublisherMetrics(CollectorRegistry())
        self.publisher = Publisher(
            self.store, self._publish, self._broadcast, MODEL, PublisherSettings(), metrics, Retrying(metrics, 0.1)
        )

    async def _publish(self, topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        self.published += [envelope_pb2.Envelope.FromString(value) for _, value in messages if value]

    async def _broadcast(self, topic: str, key: bytes, value: bytes) -> None:
        self.distributions.append(envelope_pb2.Envelope.FromString(value).figures_distribution)

    async def work(self, events: list[envelope_pb2.Envelope]) -> None:
        batch = as_records(events, self.offset)
        self.offset += len(batch)
        done = plan(batch, 1 << 62, 0)
        assert not done.dead
        await self.store.apply(done.writes, done.activity, done.newest_ms)

    async def publish_all(self) -> None:
        while await self.publisher.run_once():
            pass


def recognise(rules: Rules, published: list[envelope_pb2.Envelope]) -> tuple[Outcome, list[Action]]:
    """What recognition's apply_scores does with each ScoreChanged: skip what is not newer, evaluate the rest at
    its event time, keep the decisions. Returns the final holdings and every action taken."""
    holdings: dict[str, Holdings] = {}
    versions: dict[str, int] = {}
    actions: list[Action] = []
    for env in published:
        scores = env.score_changed
        if scores.version <= versions.get(env.employee_id, 0):
            continue
        versions[env.employee_id] = scores.version
        at = env.occurred_at.ToDatetime(tzinfo=UTC)
        windows = {w: {c: getattr(s, c) for c in COMPONENTS} for w, s in scores.windows.items()}
        mine = holdings.setdefault(env.employee_id, {})
        for decision in evaluate(rules, flatten(dict(scores.signals), windows), mine, at):
            mine[(decision.badge, decision.tier)] = decision.holding
            actions.append(decision.action)
    return {e: summary(h) for e, h in holdings.items() if summary(h)}, actions


def summary(holdings: Holdings) -> dict[tuple[str, Tier], tuple[bool, int, date | None, date | None]]:
    """What must agree: held or not, how often granted, and the days of the last grant and revocation."""
    return {
        key: (h.held, h.grant_seq, h.granted_at and h.granted_at.date(), h.revoked_at and h.revoked_at.date())
        for key, h in holdings.items()
        if h.grant_seq
    }


def reference(rules: Rules, events: list[envelope_pb2.Envelope]) -> Outcome:
    """Each person's figures as of the end of every day, computed from the history up to that day alone."""
    holdings: dict[str, Holdings] = {p: {} for p in PEOPLE}
    for day in range(START_DAY, START_DAY + DAYS):
        upto = [e for e in events if e.occurred_at.seconds < (day + 1) * DAY]
        states = expected_states(as_records(upto, 0), MODEL)
        at = datetime.fromtimestamp((day + 1) * DAY - 1, UTC)
        for person, state in states.items():
            figs = figures(state, day, MODEL)
            for decision in evaluate(rules, flatten(figs.signals, figs.windows), holdings[person], at):
                holdings[person][(decision.badge, decision.tier)] = decision.holding
    return {e: summary(h) for e, h in holdings.items() if summary(h)}


async def in_one_burst(events: list[envelope_pb2.Envelope], seed: int) -> Pipeline:
    """Worker batches of a few hundred events; the publisher gets a round only now and then, so the worker is
    weeks ahead of it when it does."""
    rng = random.Random(seed)
    pipeline = Pipeline()
    for start in range(0, len(events), 300):
        await pipeline.work(events[start : start + 300])
        if rng.random() < 0.15:
            await pipeline.publisher.run_once()
    await pipeline.publish_all()
    return pipeline


async def day_by_day(events: list[envelope_pb2.Envelope], seed: int) -> Pipeline:
    """Each day's events, then a publisher round; on some days a round in the middle of the day too."""
    rng = random.Random(seed)
    pipeline = Pipeline()
    for day in range(START_DAY, START_DAY + DAYS):
        today = [e for e in events if day * DAY <= e.occurred_at.seconds < (day + 1) * DAY]
        half = len(today) // 2 if rng.random() < 0.3 else 0
        for part in (today[:half], today[half:]):
            if part:
                await pipeline.work(part)
                await pipeline.publisher.run_once()
    await pipeline.publish_all()
    return pipeline


@pytest.mark.parametrize("seed", [1, 2, 4])
def test_a_history_imported_in_one_burst_gives_the_badges_it_gives_day_by_day(rules: Rules, seed: int) -> None:
    events = history(seed)
    burst = asyncio.run(in_one_burst(events, seed))
    lived = asyncio.run(day_by_day(events, seed))

    imported, imported_actions = recognise(rules, burst.published)
    live, live_actions = recognise(rules, lived.published)
    assert imported == live == reference(rules, events)
    # Every completed day's company distribution went out once per round that completed it, the same either way.
    days = [d.day for d in burst.distributions]
    assert days == list(range(days[0], START_DAY + DAYS - 1)) and days[0] <= START_DAY + 1
    assert burst.distributions == lived.distributions
    for actions in (imported_actions, live_actions):  # the history exercises every part of the state machine
        assert {Action.QUALIFY, Action.GRANT, Action.AT_RISK, Action.REVOKE} <= set(actions)
    behind = max(e.score_changed.version >> 32 for e in burst.published[:50]) < START_DAY + DAYS // 2
    assert behind, "the burst's first rounds published early days while the worker was far ahead"


def test_the_old_coalesced_figures_alone_would_not_have_sufficed(rules: Rules) -> None:
    """A counter-check of the test's power: evaluating only each person's final figures, as a burst without
    the day walk gave recognition, misses grants and revocations the day-by-day history has."""
    events = history(1)
    states = expected_states(as_records(events, 0), MODEL)
    last = START_DAY + DAYS - 1
    at = datetime.fromtimestamp((last + 1) * DAY - 1, UTC)
    final: dict[str, Holdings] = {}
    for person, state in states.items():
        figs = figures(state, last, MODEL)
        mine = final.setdefault(person, {})
        for decision in evaluate(rules, flatten(figs.signals, figs.windows), mine, at):
            mine[(decision.badge, decision.tier)] = replace(decision.holding)
    assert {e: summary(h) for e, h in final.items() if summary(h)} != reference(rules, events)
