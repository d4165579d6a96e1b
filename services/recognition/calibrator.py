"""The company's calibration in the running service: each period's from the distribution engagement published.

The pure part (what a calibration is, the thresholds it gives) is `calibration.py`. Engagement publishes the
company's distribution of every completed day to every partition after that day's figures (decision 0025);
the consumer keeps them in Redis (`record`), and figures of a day are judged with the calibration of their
period: the distribution of the day before the period began. So every partition, replica and restarted
process, a history replayed in one burst and the offline harness judge a day with the same thresholds. In a
history's first period, before any such day, the newest distribution of an earlier day holds. Once the
programme owner has approved a proposal (decision 0023), the approved calibration is in force instead, on
every replica within `refresh_seconds`, until the next approval.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator

from catalyst.events.v1 import scores_pb2
from redis import asyncio as aioredis

from services.common.errors import FailedPrecondition
from services.engagement.model.distribution import Distribution
from services.recognition.calibration import (
    Approval,
    Calibration,
    calibrated_metrics,
    day_of,
    period_start,
    proposal_id,
    source_day,
)
from services.recognition.rules import Rules

DISTRIBUTIONS_KEY = "recognition:distributions"  # hash: day -> that day's distribution (JSON)
PROPOSAL_KEY = "recognition:calibration:proposal"
APPROVED_KEY = "recognition:calibration:approved"
APPROVALS_KEY = "recognition:calibration:approvals"  # every approval, oldest first: the trail
_FIGURES_FIELD = "figures"


def _distribution(raw: bytes) -> Distribution:
    """A kept distribution: stored as the FiguresDistribution message it came in."""
    return Distribution.from_pb(scores_pb2.FiguresDistribution.FromString(raw))


class Calibrator:
    """The calibration in force for figures of a given day, from the distributions kept in Redis."""

    def __init__(self, redis: aioredis.Redis, rules: Rules, batch: int = 500, refresh_seconds: float = 5.0) -> None:
        self.redis = redis
        self.rules = rules
        self.batch = batch
        self.refresh_seconds = refresh_seconds
        self.automatic: Calibration | None = None  # the newest period's this process judged with
        self._periods: dict[dt.datetime, Calibration] = {}
        self.approval: Approval | None = None
        self._approval_read = -float("inf")

    @property
    def enabled(self) -> bool:
        return bool(calibrated_metrics(self.rules))

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in force: the approved one, else the newest period's."""
        return self.approval.calibration if self.approval else self.automatic

    def _starts_period(self, day: int) -> bool:
        at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day)
        return period_start(self.rules, at) == at

    async def record(self, distribution: Distribution) -> None:
        """Keeps a day's distribution. Every partition brings the same one, so a second write changes nothing.
        Kept are the days before a period starts, the days before the first of them (a history's first period
        reads those) and the newest (proposals); other days are dropped."""
        await self.redis.hset(DISTRIBUTIONS_KEY, str(distribution.day), distribution.to_pb().SerializeToString())
        days = [int(key) for key in await self.redis.hkeys(DISTRIBUTIONS_KEY)]
        ends = [day for day in days if self._starts_period(day + 1)]
        if not ends:
            return
        stale = [str(day) for day in days if min(ends) < day < max(days) and day not in ends]
        if stale:
            await self.redis.hdel(DISTRIBUTIONS_KEY, *stale)

    async def current(self, at: dt.datetime) -> Calibration | None:
        """The calibration for figures as of `at`: the approved one if any, else the one `source_day` names."""
        if not self.enabled:
            return None
        await self._refresh_approval()
        if self.approval is not None:
            return self.approval.calibration
        start = period_start(self.rules, at)
        known = self._periods.get(start)
        if known is not None:
            return known
        day = source_day(self.rules, [int(key) for key in await self.redis.hkeys(DISTRIBUTIONS_KEY)], at)
        raw = None if day is None else await self.redis.hget(DISTRIBUTIONS_KEY, str(day))
        if raw is None:
            return None
        calibration = Calibration.of(self.rules, _distribution(raw), at)
        if day == day_of(start) - 1:  # the period's own: kept for the whole period
            self._periods[start] = calibration
            if self.automatic is None or start > self.automatic.period_start:
                self.automatic = calibration
        return calibration

    async def _refresh_approval(self) -> None:
        """Reads the approval at most once every `refresh_seconds` (another replica may have stored one)."""
        if time.monotonic() - self._approval_read < self.refresh_seconds:
            return
        self._approval_read = time.monotonic()
        raw = await self.redis.get(APPROVED_KEY)
        self.approval = None if raw is None else Approval.from_json(json.loads(raw))

    async def propose(self, at: dt.datetime) -> tuple[Calibration, list[dict[str, float]]]:
        """A calibration from the newest distribution (the company as of the last complete day), kept as the
        proposal to approve, with everyone's latest figures (an empty one when no criterion is calibrated or
        nothing was distributed yet)."""
        proposal = Calibration(period_start(self.rules, at), 0, 0)
        if not self.enabled:
            return proposal, []
        days = [int(key) for key in await self.redis.hkeys(DISTRIBUTIONS_KEY)]
        raw = await self.redis.hget(DISTRIBUTIONS_KEY, str(max(days))) if days else None
        if raw is not None:
            proposal = Calibration.of(self.rules, _distribution(raw), at)
        if self.automatic is None:
            await self.current(at)
        await self.redis.set(PROPOSAL_KEY, json.dumps(proposal.to_json()))
        await self._refresh_approval()
        return proposal, [f async for f in self._everyone()]

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

    async def _everyone(self) -> AsyncIterator[dict[str, float]]:
        """Every stored employee's latest figures (a SCAN: only when the programme owner lists proposals)."""
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
