"""Calibration to the company: percentile thresholds from the company's own figures (pure: no I/O, no clock).

A criterion with `percentile: {grant: 90, keep: 75}` needs, besides its absolute floor, what the top 10 % of
active colleagues reach (75 % to keep). The thresholds come from the company's distribution that engagement
publishes for every day (`FiguresDistribution`, decision 0025): a period takes the distribution of the day
before it began and keeps it (event time), so a badge does not flicker while the distribution moves; the gap
between the grant and keep percentiles is the hysteresis within a period. Below the scoring file's
`min_population` active employees nobody is compared with anybody: a percentile criterion cannot be earned
and holds on its floor alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.engagement.model.distribution import Distribution
    from services.recognition.rules import Criterion, Rules

_MONDAY = dt.date(1970, 1, 5)


@dataclass(frozen=True)
class Calibration:
    """The company's distribution of the figures percentile criteria read, as of the start of a period.

    `quantiles[metric][p]` is the value the top (100 - p) % of the `population` active employees reach.
    """

    period_start: dt.datetime
    population: int
    min_population: int
    quantiles: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: Rules, distribution: Distribution, at: dt.datetime) -> Calibration:
        """The calibration of the period `at` falls in, from a day's distribution of the metrics rules rank."""
        metrics = calibrated_metrics(rules)
        quantiles = {m: v for m, v in distribution.quantiles.items() if m in metrics}
        return cls(period_start(rules, at), distribution.population, distribution.min_population, quantiles)

    def value(self, metric: str, percentile: float) -> float | None:
        """What the top (100 - percentile) % reach; None when the metric was not calibrated."""
        table = self.quantiles.get(metric)
        if not table:
            return None
        return table[min(len(table) - 1, math.floor(percentile))]

    def to_json(self) -> dict[str, object]:
        return {
            "period_start": self.period_start.isoformat(),
            "population": self.population,
            "min_population": self.min_population,
            "quantiles": {m: list(v) for m, v in self.quantiles.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Calibration:
        quantiles = raw.get("quantiles", {})
        assert isinstance(quantiles, Mapping)
        return cls(
            dt.datetime.fromisoformat(str(raw["period_start"])),
            int(str(raw["population"])),
            int(str(raw.get("min_population", 0))),
            {str(m): tuple(float(x) for x in v) for m, v in quantiles.items()},
        )


def proposal_id(calibration: Calibration) -> str:
    """Names a proposal by its content, so an approval approves exactly the figures the approver saw."""
    text = json.dumps(calibration.to_json(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Approval:
    """A proposal the programme owner approved: in force instead of the periodic calibration until the next
    approval (decision 0023)."""

    calibration: Calibration
    proposal_id: str
    approved_by: str
    approved_at: dt.datetime

    def to_json(self) -> dict[str, object]:
        return {
            "calibration": self.calibration.to_json(),
            "proposal_id": self.proposal_id,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Approval:
        calibration = raw["calibration"]
        assert isinstance(calibration, Mapping)
        return cls(
            Calibration.from_json(calibration),
            str(raw["proposal_id"]),
            str(raw["approved_by"]),
            dt.datetime.fromisoformat(str(raw["approved_at"])),
        )


def calibrated_metrics(rules: Rules) -> list[str]:
    """The metrics some criterion ranks within the company."""
    return sorted(
        {c.metric for b in rules.badges.values() for t in b.tiers.values() for c in t.criteria if c.percentile}
    )


def period_start(rules: Rules, at: dt.datetime) -> dt.datetime:
    """The start of the calibration period `at` falls in: periods of `period_days` counted from a Monday, so
    weekly periods are ISO weeks. Rules without a calibration section have the section's default periods (an
    empty proposal still names its period)."""
    from services.recognition.rules import CalibrationRule  # rules.py imports this module

    days = (rules.calibration or CalibrationRule()).period_days
    index = (at.date() - _MONDAY).days // days
    start = _MONDAY + dt.timedelta(days=index * days)
    return dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)


def day_of(at: dt.datetime) -> int:
    """Days since 1970-01-01 (UTC): how distributions name their day."""
    return (at.date() - dt.date(1970, 1, 1)).days


def source_day(rules: Rules, days: Iterable[int], at: dt.datetime) -> int | None:
    """The day whose distribution calibrates figures as of `at`: the day before their period began, or in a
    history's first period (no such day) the newest day before theirs; None before any. Only days before
    `at`'s count, so a consumer that already holds later days (another partition ahead) chooses the same."""
    before = day_of(period_start(rules, at)) - 1
    earlier = [d for d in days if d < day_of(at)]
    if before in earlier:
        return before
    return max(earlier, default=None)


def thresholds(criterion: Criterion, calibration: Calibration | None) -> tuple[float, float]:
    """(grant, keep) for a criterion: its floors, raised to its percentiles within the company. Without a
    calibration (too few active colleagues, or none yet) a percentile criterion cannot be earned and is kept
    on its floor."""
    if criterion.percentile is None:
        return criterion.grant, criterion.keep
    grant = calibration.value(criterion.metric, criterion.percentile.grant) if calibration else None
    keep = calibration.value(criterion.metric, criterion.percentile.keep) if calibration else None
    return (
        math.inf if grant is None else max(criterion.grant, grant),
        criterion.keep if keep is None else max(criterion.keep, keep),
    )


@dataclass(frozen=True)
class Reached:
    """A criterion's thresholds and how many people's figures reach the grant one (None: below the minimum
    group size, so not told; `grant` is infinite when the calibration compares nobody)."""

    grant: float
    keep: float
    meeting: int | None


@dataclass(frozen=True)
class CriterionProposal:
    """One percentile criterion: what the proposal would make of it beside what is in force."""

    badge: str
    tier: str
    criterion: Criterion
    proposed: Reached
    in_force: Reached


def _reached(criterion: Criterion, calibration: Calibration | None, everyone: list[float], k: int) -> Reached:
    grant, keep = thresholds(criterion, calibration)
    meeting = sum(1 for v in everyone if v >= grant)
    return Reached(grant, keep, meeting if meeting == 0 or meeting >= k else None)


def proposals(
    rules: Rules,
    proposed: Calibration,
    in_force: Calibration | None,
    everyone: Iterable[Mapping[str, float]],
    min_group_size: int,
) -> list[CriterionProposal]:
    """Every percentile criterion with the thresholds of the proposal and of the calibration in force, and how
    many people reach each: counts of at least `min_group_size` (or none at all), never who."""
    figures = list(everyone)
    out = []
    for badge_id, badge in rules.badges.items():
        for tier in badge.ordered_tiers():
            for c in badge.tiers[tier].criteria:
                if c.percentile is None:
                    continue
                values = [float(f.get(c.metric, 0.0)) for f in figures]
                out.append(
                    CriterionProposal(
                        badge_id,
                        tier.value,
                        c,
                        _reached(c, proposed, values, min_group_size),
                        _reached(c, in_force, values, min_group_size),
                    )
                )
    return out
