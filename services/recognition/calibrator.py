"""The company's calibration in the running service: computed once per period from the stored figures.

The pure part (what a calibration is, when one is due, the thresholds it gives) is `calibration.py`; this
adapter keeps each period's calibration in Redis, so every replica and a restarted process judge a period with
the same thresholds, and computes one from the employees' latest figures when the event time of a ScoreChanged
first enters a period. Figures are judged with the calibration of their own period, also when another
partition's newer figures already started a later one (a history replayed faster than recognition evaluates
it), and a period is calibrated on the figures of the people recognition has already seen as of its start, not
on those still weeks behind (unless too few are). Once the programme owner has approved a proposal (decision 0023), the
approved calibration is in force instead, on every replica within `refresh_seconds`, until the next approval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator

from redis import asyncio as aioredis

from services.common.errors import FailedPrecondition
from services.recognition.calibration import (
    Approval,
    Calibration,
    calibrate,
    calibrated_metrics,
    period_start,
    proposal_id,
)
from services.recognition.rules import Rules

CALIBRATION_KEY = "recognition:calibration"
PROPOSAL_KEY = "recognition:calibration:proposal"
APPROVED_KEY = "recognition:calibration:approved"
APPROVALS_KEY = "recognition:calibration:approvals"  # every approval, oldest first: the trail
_FIGURES_FIELD = "figures"
_SCORED_AT_FIELD = "scored_at"


def period_key(start: dt.datetime) -> str:
    """The Redis key of one period's calibration."""
    return f"{CALIBRATION_KEY}:{start.date().isoformat()}"


class Calibrator:
    """The calibration in force, shared through Redis (the newest period wins)."""

    def __init__(self, redis: aioredis.Redis, rules: Rules, batch: int = 500, refresh_seconds: float = 5.0) -> None:
        self.redis = redis
        self.rules = rules
        self.batch = batch
        self.refresh_seconds = refresh_seconds
        self.automatic: Calibration | None = None  # the newest period's
        self._periods: dict[dt.datetime, Calibration] = {}
        self.approval: Approval | None = None
        self._approval_read = -float("inf")
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(calibrated_metrics(self.rules))

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in force: the approved one, else the periodic one."""
        return self.approval.calibration if self.approval else self.automatic

    async def current(self, at: dt.datetime) -> Calibration | None:
        """The calibration in force: the approved one if any, else the one of the period `at` falls in."""
        if not self.enabled:
            return None
        await self._refresh_approval()
        if self.approval is not None:
            return self.approval.calibration
        start = period_start(self.rules, at)
        known = self._periods.get(start)
        if known is not None:
            return known
        async with self._lock:
            known = self._periods.get(start) or await self._load(period_key(start))
            if known is None:
                known = await self._calibrate(start, at)
                await self.redis.set(period_key(start), json.dumps(known.to_json()))
                if self.automatic is None or start >= self.automatic.period_start:
                    await self.redis.set(CALIBRATION_KEY, json.dumps(known.to_json()))
            self._periods[start] = known
            if self.automatic is None or start > self.automatic.period_start:
                self.automatic = known
            return known

    async def _calibrate(self, start: dt.datetime, at: dt.datetime) -> Calibration:
        """From the figures recognition stored as of the day before the period began or later; from everyone's
        when fewer than the minimum population are that recent."""
        since = start - dt.timedelta(days=1)
        everyone = [(scored, f) async for scored, f in self._everyone()]
        recent = calibrate(self.rules, [f for scored, f in everyone if scored is not None and scored >= since], at)
        if recent.quantiles:
            return recent
        return calibrate(self.rules, [f for _, f in everyone], at)

    async def _refresh_approval(self) -> None:
        """Reads the approval at most once every `refresh_seconds` (another replica may have stored one)."""
        if time.monotonic() - self._approval_read < self.refresh_seconds:
            return
        self._approval_read = time.monotonic()
        raw = await self.redis.get(APPROVED_KEY)
        self.approval = None if raw is None else Approval.from_json(json.loads(raw))

    async def propose(self, at: dt.datetime) -> tuple[Calibration, list[dict[str, float]]]:
        """A calibration from everyone's figures now, kept as the proposal to approve, with those figures (an
        empty one when no criterion is calibrated)."""
        if not self.enabled:
            return Calibration(period_start(self.rules, at), 0), []
        everyone = [f async for _, f in self._everyone()]
        proposal = calibrate(self.rules, everyone, at)
        if self.automatic is None:
            self.automatic = await self._load(CALIBRATION_KEY)
        await self.redis.set(PROPOSAL_KEY, json.dumps(proposal.to_json()))
        await self._refresh_approval()
        return proposal, everyone

    async def approve(self, wanted: str, by: str, at: dt.datetime) -> Approval:
        """The stored proposal named `wanted` becomes the calibration in force; the approval joins the trail."""
        raw = await self.redis.get(PROPOSAL_KEY)
        proposal = None if raw is None else Calibration.from_json(json.loads(raw))
        if proposal is None or proposal_id(proposal) != wanted:
            raise FailedPrecondition(
                "proposal_id: this is not the newest proposal (someone listed the proposals since): list them again"
            )
        if not proposal.quantiles:
            raise FailedPrecondition("the proposal compares nobody (too few active colleagues): nothing to approve")
        approval = Approval(proposal, wanted, by, at)
        text = json.dumps(approval.to_json())
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(APPROVED_KEY, text)
        pipe.rpush(APPROVALS_KEY, text)
        await pipe.execute()
        self.approval = approval
        self._approval_read = time.monotonic()
        return approval

    async def approvals(self) -> list[Approval]:
        """Every approval, newest first."""
        return [Approval.from_json(json.loads(raw)) for raw in reversed(await self.redis.lrange(APPROVALS_KEY, 0, -1))]

    async def _load(self, key: str) -> Calibration | None:
        raw = await self.redis.get(key)
        return None if raw is None else Calibration.from_json(json.loads(raw))

    async def _everyone(self) -> AsyncIterator[tuple[dt.datetime | None, dict[str, float]]]:
        """Every stored employee's latest figures with their event time (a SCAN: once per calibration period)."""
        keys: list[bytes] = []
        async for key in self.redis.scan_iter(match="{emp:*}:state", count=self.batch):
            keys.append(key)
            if len(keys) >= self.batch:
                for figures in await self._figures(keys):
                    yield figures
                keys = []
        for figures in await self._figures(keys):
            yield figures

    async def _figures(self, keys: list[bytes]) -> list[tuple[dt.datetime | None, dict[str, float]]]:
        if not keys:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, _FIGURES_FIELD)
            pipe.hget(key, _SCORED_AT_FIELD)
        replies = await pipe.execute()
        return [
            (
                dt.datetime.fromisoformat(scored.decode() if isinstance(scored, bytes) else scored) if scored else None,
                {k: float(v) for k, v in json.loads(raw).items()},
            )
            for raw, scored in zip(replies[::2], replies[1::2], strict=True)
            if raw
        ]
