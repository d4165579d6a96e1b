"""The company's calibration in the running service: computed once per period from the stored figures.

The pure part (what a calibration is, when one is due, the thresholds it gives) is `calibration.py`; this
adapter keeps the current one in Redis, so every replica and a restarted process judge a period with the
same thresholds, and computes a new one from every employee's latest figures when the event time of a
ScoreChanged enters a new period.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator

from redis import asyncio as aioredis

from services.recognition.calibration import Calibration, calibrate, calibrated_metrics, due, period_start
from services.recognition.rules import Rules

CALIBRATION_KEY = "recognition:calibration"
_FIGURES_FIELD = "figures"


class Calibrator:
    """The calibration in force, shared through Redis (the newest period wins)."""

    def __init__(self, redis: aioredis.Redis, rules: Rules, batch: int = 500) -> None:
        self.redis = redis
        self.rules = rules
        self.batch = batch
        self.calibration: Calibration | None = None
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(calibrated_metrics(self.rules))

    async def current(self, at: dt.datetime) -> Calibration | None:
        """The calibration for the period `at` falls in, or the newest one if `at` is in an earlier period."""
        if not due(self.rules, self.calibration, at):
            return self.calibration
        async with self._lock:
            if not due(self.rules, self.calibration, at):
                return self.calibration
            stored = await self._load()
            if stored is not None and stored.period_start >= period_start(self.rules, at):
                self.calibration = stored
                return stored
            fresh = calibrate(self.rules, [f async for f in self._everyone()], at)
            await self.redis.set(CALIBRATION_KEY, json.dumps(fresh.to_json()))
            self.calibration = fresh
            return fresh

    async def _load(self) -> Calibration | None:
        raw = await self.redis.get(CALIBRATION_KEY)
        return None if raw is None else Calibration.from_json(json.loads(raw))

    async def _everyone(self) -> AsyncIterator[dict[str, float]]:
        """Every stored employee's latest figures (a SCAN: once per calibration period)."""
        keys: list[bytes] = []
        async for key in self.redis.scan_iter(match="{emp:*}:state", count=self.batch):
            keys.append(key)
            if len(keys) >= self.batch:
                for figures in await self._figures(keys):
                    yield figures
                keys = []
        for figures in await self._figures(keys):
            yield figures

    async def _figures(self, keys: list[bytes]) -> list[dict[str, float]]:
        if not keys:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, _FIGURES_FIELD)
        return [{k: float(v) for k, v in json.loads(raw).items()} for raw in await pipe.execute() if raw]
