"""The service's calibration: computed once a period from the stored figures, shared through Redis."""

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
from services.recognition.calibration import proposal_id, proposals
from services.recognition.calibrator import APPROVED_KEY, CALIBRATION_KEY, Calibrator
from services.recognition.rules import load_rules
from tests.unit.recognition.test_calibration import RULES, write

MONDAY = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)


class FakeRedis:
    """The few calls the calibrator makes, over dicts."""

    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[bytes, dict[str, bytes]] = {}
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

    async def scan_iter(self, match: str, count: int) -> AsyncIterator[bytes]:
        self.scans += 1
        for key in list(self.hashes):
            if fnmatch.fnmatchcase(key.decode(), match.replace("[", "[[]")):
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


def store(redis: FakeRedis, n: int, answers: float, at: datetime = MONDAY, first: int = 0) -> None:
    for i in range(first, first + n):
        figures = {"active_days_30d": 5.0, "answers_100d": answers + i - first}
        redis.hashes[f"{{emp:e{i}}}:state".encode()] = {
            "figures": json.dumps(figures).encode(),
            "scored_at": at.isoformat().encode(),
        }


def test_one_calibration_a_period_from_the_stored_figures_shared_through_redis(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))  # a rule with a percentile criterion on answers_100d
    redis = FakeRedis()
    store(redis, 100, 0.0)

    async def scenario() -> None:
        first = Calibrator(redis, rules)  # type: ignore[arg-type]
        calibration = await first.current(MONDAY)
        assert calibration is not None and calibration.population == 100
        assert calibration.value("answers_100d", 90) == 90.0
        assert await first.current(MONDAY + timedelta(days=3)) is calibration
        assert redis.scans == 1
        # Another replica (or a restart) takes the stored one instead of computing its own.
        second = Calibrator(redis, rules)  # type: ignore[arg-type]
        assert await second.current(MONDAY + timedelta(days=1)) == calibration
        assert redis.scans == 1
        # The next period: computed again from the figures as they are now.
        store(redis, 100, 10.0)
        later = await second.current(MONDAY + timedelta(days=7))
        assert later is not None and later.value("answers_100d", 90) == 100.0
        assert json.loads(redis.strings[CALIBRATION_KEY])["period_start"].startswith("2026-08-10")

    asyncio.run(scenario())


def test_an_approved_proposal_is_in_force_on_every_replica_until_the_next_approval(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()
    store(redis, 100, 0.0)

    async def scenario() -> None:
        owner = Calibrator(redis, rules)  # type: ignore[arg-type]
        other = Calibrator(redis, rules, refresh_seconds=0)  # type: ignore[arg-type]
        assert (await other.current(MONDAY)).value("answers_100d", 90) == 90.0  # type: ignore[union-attr]
        store(redis, 100, 10.0)  # colleagues got busier: the proposal moves, the calibration in force does not
        proposal, everyone = await owner.propose(MONDAY + timedelta(days=2))
        assert proposal.value("answers_100d", 90) == 100.0 and len(everyone) == 100
        with pytest.raises(FailedPrecondition, match="list them again"):
            await owner.approve("0123456789abcdef", "comms", MONDAY)
        approval = await owner.approve(proposal_id(proposal), "comms", MONDAY + timedelta(days=2))
        assert approval.approved_by == "comms" and APPROVED_KEY in redis.strings
        # The other replica reads the approval and keeps it, even into later periods.
        in_force = await other.current(MONDAY + timedelta(days=30))
        assert in_force == proposal and other.calibration == proposal
        store(redis, 100, 50.0)
        assert await other.current(MONDAY + timedelta(days=60)) == proposal
        assert [a.proposal_id for a in await other.approvals()] == [proposal_id(proposal)]

    asyncio.run(scenario())


def test_a_proposal_that_compares_nobody_cannot_be_approved(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))  # min_population 10
    redis = FakeRedis()
    store(redis, 4, 0.0)

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules)  # type: ignore[arg-type]
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


def test_figures_are_judged_with_their_own_period_s_calibration_made_from_the_figures_of_its_start(
    tmp_path: Path,
) -> None:
    """A replayed history: one partition's figures already entered a later week while others are still weeks
    behind. Each week keeps its own calibration, made from the figures as of its start."""
    rules = load_rules(write(tmp_path, RULES))
    redis = FakeRedis()
    store(redis, 100, 0.0, MONDAY - timedelta(days=1))  # as of the Sunday before the week

    async def scenario() -> None:
        calibrator = Calibrator(redis, rules)  # type: ignore[arg-type]
        week = await calibrator.current(MONDAY)
        assert week is not None and week.value("answers_100d", 90) == 90.0
        store(redis, 100, 50.0, MONDAY + timedelta(days=20))  # half the company three weeks on
        later = await calibrator.current(MONDAY + timedelta(days=21))
        # Only the figures as of that week's start count: the 100 still weeks behind are left out.
        assert later is not None and later.population == 100 and later.value("answers_100d", 90) == 140.0
        assert await calibrator.current(MONDAY + timedelta(days=2)) is week  # a laggard's figures: its own week
        assert calibrator.calibration is later
        assert json.loads(redis.strings[CALIBRATION_KEY])["period_start"].startswith("2026-08-24")
        # A replica that starts now judges the first week alike.
        other = Calibrator(redis, rules)  # type: ignore[arg-type]
        assert await other.current(MONDAY + timedelta(days=4)) == week

    asyncio.run(scenario())
