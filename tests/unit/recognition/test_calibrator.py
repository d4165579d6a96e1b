"""The service's calibration: computed once a period from the stored figures, shared through Redis."""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.recognition.calibrator import CALIBRATION_KEY, Calibrator
from services.recognition.rules import load_rules
from tests.unit.recognition.test_calibration import RULES, write

MONDAY = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)


class FakeRedis:
    """The few calls the calibrator makes, over dicts."""

    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[bytes, dict[str, bytes]] = {}
        self.scans = 0

    async def get(self, key: str) -> bytes | None:
        return self.strings.get(key)

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

    def hget(self, key: bytes, field: str) -> None:
        self.calls.append((key, field))

    async def execute(self) -> list[Any]:
        return [self.redis.hashes.get(k, {}).get(f) for k, f in self.calls]


def store(redis: FakeRedis, n: int, answers: float) -> None:
    for i in range(n):
        figures = {"active_days_30d": 5.0, "answers_100d": answers + i}
        redis.hashes[f"{{emp:e{i}}}:state".encode()] = {"figures": json.dumps(figures).encode()}


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
