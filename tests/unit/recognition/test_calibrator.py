"""The service's calibration: each period's from the company distribution of the day before it began, kept in
Redis as engagement published it, so every partition, replica and restart judges a day alike."""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import FailedPrecondition
from services.engagement.model.distribution import distribution
from services.recognition.calibration import day_of, proposal_id, proposals
from services.recognition.calibrator import APPROVED_KEY, DISTRIBUTIONS_KEY, Calibrator
from services.recognition.rules import load_rules
from tests.unit.recognition.test_calibration import RULES, SPREAD, company, write

MONDAY = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
SUNDAY = day_of(MONDAY) - 1


class FakeRedis:
    """The few calls the calibrator makes, over dicts."""

    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[Any, dict[str, bytes]] = {}
        self.lists: dict[str, list[bytes]] = {}
        self.scans = 0
        self.gets = 0

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return self.strings.get(key)

    async def lrange(self, key: str, start: int, end: int) -> list[bytes]:
        return list(self.lists.get(key, []))

    async def set(self, key: str, value: str) -> None:
        self.strings[key] = value.encode()

    async def hset(self, key: str, field: str, value: bytes) -> None:
        self.hashes.setdefault(key, {})[field] = value

    async def hget(self, key: str, field: str) -> bytes | None:
        return self.hashes.get(key, {}).get(field)

    async def hkeys(self, key: str) -> list[bytes]:
        return [f.encode() for f in self.hashes.get(key, {})]

    async def hdel(self, key: str, *fields: str) -> None:
        for f in fields:
            self.hashes.get(key, {}).pop(f, None)

    async def scan_iter(self, match: str, count: int) -> AsyncIterator[bytes]:
        self.scans += 1
        for key in list(self.hashes):
            if isinstance(key, bytes) and fnmatch.fnmatchcase(key.decode(), match.replace("[", "[[]")):
                yield key

    def pipeline(self, transaction: bool) -> FakePipe:
        return FakePipe(self)


class FakePipe:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.calls: list[tuple[bytes, str]] = []
        self.writes: list[tuple[str, str, str]] = []

    def hget(self, key: bytes, field: str) -> None:
        self.calls.append((key, field))

    def set(self, key: str, value: str) -> None:
        self.writes.append(("set", key, value))

    def rpush(self, key: str, value: str) -> None:
        self.writes.append(("rpush", key, value))

    async def execute(self) -> list[Any]:
        for kind, key, value in self.writes:
            if kind == "set":
                self.redis.strings[key] = value.encode()
            else:
                self.redis.lists.setdefault(key, []).append(value.encode())
        return [self.redis.hashes.get(k, {}).get(f) for k, f in self.calls]


def store(redis: FakeRedis, n: int, answers: float) -> None:
    """Latest figures of `n` people as recognition stores them (what proposals count)."""
    for i in range(n):
        figures = {"active_days_30d": 5.0, "answers_100d": answers + i}
        redis.hashes[f"{{emp:e{i}}}:state".encode()] = {"figures": json.dumps(figures).encode()}


def spread(day: int, n: int, answers: float) -> Any:
    """The company's distribution of `day`: `n` active people answering answers, answers + 1, ..."""
    return distribution(day, company([answers + i for i in range(n)]), SPREAD)


def test_a_period_is_judged_with_the_distribution_of_the_day_before_it_began(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))  # a rule with a percentile criterion on answers_100d
    redis = FakeRedis()

    async def scenario() -> None:
        first = Calibrator(redis, rules)  # type: ignore[arg-type]
        for day, answers in ((SUNDAY - 1, 5.0), (SUNDAY, 0.0), (SUNDAY + 1, 40.0)):
            await first.record(spread(day, 100, answers))
        calibration = await first.current(MONDAY + timedelta(days=3))
        assert calibration is not None and calibration.population == 100
        assert calibration.value("answers_100d", 90) == 90.0  # Sunday's, not Monday's or Saturday's
        assert await first.current(MONDAY + timedelta(days=6)) is calibration
        # Another replica (or a restart) finds the same in Redis.
        second = Calibrator(redis, rules)  # type: ignore[arg-type]
        assert await second.current(MONDAY) == calibration

    asyncio.run(scenario())


def test_a_partition_behind_the_others_judges_its_figures_with_their_own_period(tmp_path: Path) -> None:
    """A replayed history: one partition already brought the distributions of weeks later."""
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules)  # type: ignore[arg-type]
        for day in range(SUNDAY - 6, SUNDAY + 22):
            await calibrator.record(spread(day, 100, float(day - SUNDAY) * 10))
        later = await calibrator.current(MONDAY + timedelta(days=21))
        assert later is not None and later.value("answers_100d", 90) == 90.0 + 210  # the Sunday three weeks on
        week = await calibrator.current(MONDAY + timedelta(days=2))
        assert week is not None and week.value("answers_100d", 90) == 90.0
        assert calibrator.calibration is later

    asyncio.run(scenario())


def test_a_historys_first_days_take_the_newest_distribution_before_them(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules)  # type: ignore[arg-type]
        assert await calibrator.current(MONDAY + timedelta(days=1)) is None  # the history began on Tuesday
        for day in range(SUNDAY + 2, SUNDAY + 6):
            await calibrator.record(spread(day, 100, float(day - SUNDAY)))
        thursday = await calibrator.current(MONDAY + timedelta(days=3))
        assert thursday is not None and thursday.value("answers_100d", 90) == 90.0 + 3

    asyncio.run(scenario())


def test_only_the_distributions_a_judgement_may_need_are_kept(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules)  # type: ignore[arg-type]
        for day in range(SUNDAY - 3, SUNDAY + 16):
            await calibrator.record(spread(day, 20, 0.0))
        kept = sorted(int(d) for d in redis.hashes[DISTRIBUTIONS_KEY])
        # The first history days (before the first Sunday), every Sunday, and the newest day.
        assert kept == [SUNDAY - 3, SUNDAY - 2, SUNDAY - 1, SUNDAY, SUNDAY + 7, SUNDAY + 14, SUNDAY + 15]

    asyncio.run(scenario())


def test_an_approved_proposal_is_in_force_on_every_replica_until_the_next_approval(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()
    store(redis, 100, 0.0)

    async def scenario() -> None:
        owner = Calibrator(redis, rules)  # type: ignore[arg-type]
        other = Calibrator(redis, rules, refresh_seconds=0)  # type: ignore[arg-type]
        await other.record(spread(SUNDAY, 100, 0.0))
        assert (await other.current(MONDAY)).value("answers_100d", 90) == 90.0  # type: ignore[union-attr]
        await other.record(spread(SUNDAY + 1, 100, 10.0))  # busier: the proposal moves, the calibration does not
        proposal, everyone = await owner.propose(MONDAY + timedelta(days=2))
        assert proposal.value("answers_100d", 90) == 100.0 and len(everyone) == 100
        with pytest.raises(FailedPrecondition, match="list them again"):
            await owner.approve("0123456789abcdef", "comms", MONDAY)
        approval = await owner.approve(proposal_id(proposal), "comms", MONDAY + timedelta(days=2))
        assert approval.approved_by == "comms" and APPROVED_KEY in redis.strings
        # The other replica reads the approval and keeps it, even into later periods.
        in_force = await other.current(MONDAY + timedelta(days=30))
        assert in_force == proposal and other.calibration == proposal
        await other.record(spread(SUNDAY + 7, 100, 50.0))
        assert await other.current(MONDAY + timedelta(days=60)) == proposal
        assert [a.proposal_id for a in await other.approvals()] == [proposal_id(proposal)]

    asyncio.run(scenario())


def test_a_proposal_that_compares_nobody_cannot_be_approved(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()
    store(redis, 4, 0.0)

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules)  # type: ignore[arg-type]
        await calibrator.record(spread(SUNDAY, 4, 0.0))  # fewer than the minimum population (10)
        proposal, everyone = await calibrator.propose(MONDAY)
        assert proposal.quantiles == {}
        (criterion,) = proposals(rules, proposal, None, everyone, 5)
        assert criterion.proposed.grant == float("inf") and criterion.proposed.meeting == 0
        with pytest.raises(FailedPrecondition, match="compares nobody"):
            await calibrator.approve(proposal_id(proposal), "comms", MONDAY)

    asyncio.run(scenario())


def test_approvals_are_read_again_only_after_refresh_seconds(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()
    store(redis, 20, 0.0)

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules, refresh_seconds=3600)  # type: ignore[arg-type]
        await calibrator.record(spread(SUNDAY, 20, 0.0))
        await calibrator.current(MONDAY)
        reads = redis.gets
        for day in range(1, 5):
            await calibrator.current(MONDAY + timedelta(hours=day))
        assert redis.gets == reads

    asyncio.run(scenario())


def test_without_a_calibrated_criterion_the_proposal_is_empty(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, {**RULES, "badges": {"helper": UNCALIBRATED}}))
    redis = FakeRedis()
    store(redis, 20, 0.0)

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules)  # type: ignore[arg-type]
        proposal, everyone = await calibrator.propose(MONDAY)
        assert (proposal.population, everyone, redis.scans) == (0, [], 0)
        assert proposals(rules, proposal, None, everyone, 5) == []

    asyncio.run(scenario())


UNCALIBRATED = {
    "name": "Helper",
    "description": "Answers questions.",
    "tiers": {
        "single": {
            "grace_days": 14,
            "criteria": [{"metric": "answers_100d", "grant": 3, "keep": 2, "label": "answers"}],
        }
    },
}
