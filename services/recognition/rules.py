"""Badge rules as data, and their evaluation (pure: no I/O, no wall clock).

A rules file names badges, their tiers and, per tier, criteria over engagement figures. Every criterion has
a grant threshold and a lower keep threshold; a tier has a grace period in event-time days. Evaluation turns
(figures, holdings, event time) into decisions: grant, at risk, recovered, revoke. Hovering between keep and
grant changes nothing, so badges do not flap.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from services.common.config_files import load_validated
from services.engagement.model.config import DEFAULT_SCORING_FILE, ScoringModel, load_model
from services.recognition.calibration import Calibration, thresholds

_SUFFIX_WINDOW = re.compile(r"_(\d+[dw])$")


class Tier(enum.StrEnum):
    """Tier names in the rules file, in ascending order for tiered badges."""

    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    SINGLE = "single"


TIER_ORDER = (Tier.BRONZE, Tier.SILVER, Tier.GOLD)


@dataclass(frozen=True)
class Catalogue:
    """The figures a rule may read: what engagement publishes in ScoreChanged, and those whose company
    distribution it publishes (FiguresDistribution), taken from its scoring model so that a signal or window
    added there is usable here and a rule naming one it lacks fails at start-up."""

    model: ScoringModel

    @classmethod
    def of(cls, model: ScoringModel) -> Catalogue:
        return cls(model)

    def check(self, name: str) -> str:
        """A metric is a ScoreChanged signal name or `score.<window>.<component>`."""
        return self.model.metric(name)

    def check_distributed(self, name: str) -> str:
        """A percentile criterion ranks a metric whose distribution engagement publishes."""
        if name not in self.model.distribution.metrics:
            raise ValueError(
                f"'{name}' is ranked within the company (percentile) but its distribution is not published: "
                f"add it to distribution.metrics in the scoring file (now {self.model.distribution.metrics})"
            )
        return name


def _catalogue(info: ValidationInfo) -> Catalogue:
    """The catalogue `load_rules` validates with."""
    catalogue = (info.context or {}).get("catalogue")
    if not isinstance(catalogue, Catalogue):
        raise ValueError("badge rules are checked against engagement's signal catalogue: read them with load_rules")
    return catalogue


def check_metric(name: str, info: ValidationInfo) -> str:
    return _catalogue(info).check(name)


def default_window(metric: str) -> str:
    """The window a figure covers, read from its name (`_30d`, `_12w`, `score.30d.x`)."""
    if metric.startswith("score."):
        return metric.split(".")[1]
    match = _SUFFIX_WINDOW.search(metric)
    return match.group(1) if match else "current"


class Percentile(BaseModel):
    """A rank within the company: the figure must reach what the top (100 - grant) % of active colleagues
    reach to earn the tier, and what the top (100 - keep) % reach to hold it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grant: float = Field(gt=0, lt=100)
    keep: float = Field(ge=0, lt=100)

    @model_validator(mode="after")
    def _keep_not_above_grant(self) -> Percentile:
        if self.keep > self.grant:
            raise ValueError(f"percentile keep ({self.keep:g}) must not exceed grant ({self.grant:g})")
        return self


class Criterion(BaseModel):
    """One figure a tier needs: at least `grant` to earn it, at least `keep` to hold it. With `percentile`,
    grant and keep are floors, raised to what the company's most active reach (calibration.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    grant: float = Field(gt=0)
    keep: float = Field(ge=0)
    percentile: Percentile | None = None
    label: str = Field(min_length=3, description="noun phrase after a number, e.g. 'posts in the last 30 days'")
    format: str = Field("number", pattern="^(number|percent)$")
    window: str = ""

    @field_validator("metric")
    @classmethod
    def _metric_known(cls, value: str, info: ValidationInfo) -> str:
        return check_metric(value, info)

    @model_validator(mode="after")
    def _ranked_metric_distributed(self, info: ValidationInfo) -> Criterion:
        if self.percentile is not None:
            _catalogue(info).check_distributed(self.metric)
        return self

    @model_validator(mode="after")
    def _keep_not_above_grant(self) -> Criterion:
        if self.keep > self.grant:
            raise ValueError(f"{self.metric}: keep ({self.keep:g}) must not exceed grant ({self.grant:g})")
        if self.format == "percent" and self.grant > 1:
            raise ValueError(f"{self.metric}: a percent criterion takes fractions between 0 and 1")
        return self

    @property
    def covers(self) -> str:
        return self.window or default_window(self.metric)


class AtLeast(BaseModel):
    """Some of a tier's criteria that earn it when `count` of them reach grant and the rest stay at keep: a person
    strong in all but one of several strengths qualifies, a specialist strong in one or two does not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1)
    of: tuple[str, ...] = Field(min_length=2, description="metrics of the tier's criteria")
    label: str = Field(min_length=3, description="what the criteria are together, e.g. 'strengths'")

    @model_validator(mode="after")
    def _fewer_than_all(self) -> AtLeast:
        if len(set(self.of)) != len(self.of):
            raise ValueError(f"at_least names a criterion twice: {list(self.of)}")
        if self.count >= len(self.of):
            raise ValueError(f"at_least.count ({self.count}) must be below the number of its criteria ({len(self.of)})")
        return self


class TierRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_days: int = Field(ge=0, le=365, description="event-time days below keep before the tier is revoked")
    confirm_days: int = Field(
        0, ge=0, le=90, description="event-time days the criteria must stay met (qualifies) before the grant"
    )
    criteria: tuple[Criterion, ...] = Field(min_length=1)
    at_least: AtLeast | None = None

    @model_validator(mode="after")
    def _metrics_unique(self) -> TierRule:
        names = [c.metric for c in self.criteria]
        if len(names) != len(set(names)):
            raise ValueError(f"a metric appears twice in one tier: {names}")
        if self.at_least is not None:
            unknown = [m for m in self.at_least.of if m not in names]
            if unknown:
                raise ValueError(f"at_least names metrics that are not criteria of the tier: {unknown}")
        return self

    def in_group(self, criterion: Criterion) -> bool:
        """Whether `count` of a group suffice for this criterion (`at_least`), instead of it being needed."""
        return self.at_least is not None and criterion.metric in self.at_least.of


class BadgeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    invitation: bool = Field(False, description="the holder may accept or decline the role")
    tiers: dict[Tier, TierRule]

    @model_validator(mode="after")
    def _tiers_consistent(self) -> BadgeRule:
        keys = set(self.tiers)
        if Tier.SINGLE in keys:
            if len(keys) != 1:
                raise ValueError("a badge has either the single tier or bronze/silver/gold tiers, not both")
        else:
            expected = set(TIER_ORDER[: len(keys)])
            if keys != expected:
                raise ValueError(f"tiers must be bronze, then silver, then gold without gaps; got {sorted(keys)}")
            for lower, higher in zip(self.ordered_tiers(), self.ordered_tiers()[1:], strict=False):
                low = {c.metric: c for c in self.tiers[lower].criteria}
                for criterion in self.tiers[higher].criteria:
                    below = low.get(criterion.metric)
                    if below is not None and criterion.grant < below.grant:
                        raise ValueError(
                            f"{higher} needs at least the {lower} grant threshold for {criterion.metric} "
                            f"({criterion.grant:g} < {below.grant:g})"
                        )
        if self.invitation and Tier.SINGLE not in keys:
            raise ValueError("invitation badges have a single tier")
        return self

    def ordered_tiers(self) -> list[Tier]:
        if Tier.SINGLE in self.tiers:
            return [Tier.SINGLE]
        return [t for t in TIER_ORDER if t in self.tiers]


class CoverageRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    badge: str = "intranet_ambassador"
    target_ratio: float = Field(0.05, gt=0, le=1, description="ambassadors per employee a department should reach")


class PilotGroupRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = "score.decayed.pilot"
    min_pilot_activities: float = Field(1, ge=0)
    max_size: int = Field(500, ge=1)

    @field_validator("metric")
    @classmethod
    def _metric_known(cls, value: str, info: ValidationInfo) -> str:
        return check_metric(value, info)


class CalibrationRule(BaseModel):
    """How often percentile criteria take a new company distribution (calibration.py); who counts as active
    and the smallest population compared are the scoring file's `distribution`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    period_days: int = Field(7, ge=1, le=90, description="percentile thresholds are recomputed once a period")


class Rules(BaseModel):
    """The whole badges.yaml file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    badges: dict[str, BadgeRule] = Field(min_length=1)
    coverage: CoverageRule = CoverageRule()
    pilot_group: PilotGroupRule = PilotGroupRule()
    calibration: CalibrationRule | None = None

    @field_validator("badges")
    @classmethod
    def _ids(cls, value: dict[str, BadgeRule]) -> dict[str, BadgeRule]:
        for badge_id in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{1,40}", badge_id):
                raise ValueError(f"badge id '{badge_id}' must be lower_snake_case")
        return value

    @model_validator(mode="after")
    def _coverage_badge_exists(self) -> Rules:
        if self.coverage.badge not in self.badges:
            raise ValueError(f"coverage.badge '{self.coverage.badge}' is not a badge in this file")
        ranked = any(c.percentile for b in self.badges.values() for t in b.tiers.values() for c in t.criteria)
        if ranked and self.calibration is None:
            raise ValueError("a criterion has a percentile: the file needs a calibration section")
        return self

    def badge(self, badge_id: str) -> BadgeRule:
        return self.badges[badge_id]


class RulesError(ValueError):
    pass


def load_rules(path: str | Path, scoring_file: str | Path = DEFAULT_SCORING_FILE) -> Rules:
    """Reads and validates the rules file against the catalogue of the engagement scoring file; every problem
    is reported with its location."""
    catalogue = Catalogue.of(load_model(scoring_file))
    return load_validated(Path(path), Rules, "badge rules", RulesError, {"catalogue": catalogue})


# ---------------------------------------------------------------- figures, holdings, decisions


def fmt(value: float, kind: str = "number") -> str:
    if kind == "percent":
        return f"{round(value * 100):d}%"
    rounded = round(value, 2)
    return f"{int(rounded)}" if rounded == int(rounded) else f"{rounded:g}"


@dataclass(frozen=True)
class EvidenceItem:
    """One figure compared with one threshold."""

    metric: str
    value: float
    threshold: float
    description: str
    window: str


@dataclass(frozen=True)
class Holding:
    """State of one (badge, tier) for one employee. `grant_seq` counts grants, so ids stay unique."""

    badge: str
    tier: Tier
    held: bool = False
    grant_seq: int = 0
    granted_at: datetime | None = None
    evidence: tuple[EvidenceItem, ...] = ()
    at_risk_since: datetime | None = None
    qualifying_since: datetime | None = None  # not held: the criteria met (`qualifies`) since (confirm_days)
    revoked_at: datetime | None = None
    revoke_reason: str = ""
    revoke_evidence: tuple[EvidenceItem, ...] = ()
    status: str = ""  # invitation badges: invited / accepted / declined
    response_seq: int = 0
    response_reason: str = ""  # the holder's words when declining
    endorsed_by: str = ""
    endorsement_note: str = ""


class Action(enum.StrEnum):
    GRANT = "grant"
    QUALIFY = "qualify"  # the criteria met (`qualifies`), the confirmation period runs (no event)
    UNQUALIFY = "unqualify"  # the criteria stopped being met before the confirmation period ended (no event)
    AT_RISK = "at_risk"
    RECOVER = "recover"
    REVOKE = "revoke"


@dataclass(frozen=True)
class Decision:
    action: Action
    badge: str
    tier: Tier
    at: datetime
    holding: Holding  # the holding after the decision
    evidence: tuple[EvidenceItem, ...] = ()
    reason: str = ""


def _threshold_text(criterion: Criterion, threshold: float, floor: float, percentile: float | None) -> str:
    """A threshold in words; a percentile one names a share of colleagues, never anyone's rank."""
    kind = criterion.format
    if criterion.percentile is None or percentile is None:
        return f"threshold {fmt(threshold, kind)}"
    return (
        f"threshold {fmt(threshold, kind)}: what the {fmt(100 - percentile)}% of active colleagues with the most "
        f"{criterion.label} reach, at least {fmt(floor, kind)}"
    )


def _evidence(criterion: Criterion, value: float, bar: Bar, keep: bool = False, group: str = "") -> EvidenceItem:
    threshold, floor, percentile = bar.keep_side() if keep else bar.grant_side()
    said = _threshold_text(criterion, threshold, floor, percentile)
    text = f"{criterion.label}: {fmt(value, criterion.format)} ({said}{group})"
    return EvidenceItem(criterion.metric, value, threshold, text, criterion.covers)


def _group_note(rule: TierRule, bar: Bar, value: float) -> str:
    """Why a criterion of an `at_least` group below its grant threshold did not stop the grant."""
    if not rule.in_group(bar.criterion) or value >= bar.grant:
        return ""
    return f"; below it, but {_suffice(rule, bar)}"


def _suffice(rule: TierRule, bar: Bar) -> str:
    """Why an `at_least` criterion below grant may stay there, in words."""
    assert rule.at_least is not None
    group = rule.at_least
    return (
        f"{group.count} of the {len(group.of)} {group.label} suffice and this one is at least at "
        f"{fmt(bar.keep, bar.criterion.format)}"
    )


@dataclass(frozen=True)
class Bar:
    """A criterion's thresholds for one evaluation: its floors, raised by the calibration if it has one."""

    criterion: Criterion
    grant: float
    keep: float

    @classmethod
    def of(cls, criterion: Criterion, calibration: Calibration | None) -> Bar:
        grant, keep = thresholds(criterion, calibration)
        return cls(criterion, grant, keep)

    def grant_side(self) -> tuple[float, float, float | None]:
        c = self.criterion
        return self.grant, c.grant, c.percentile.grant if c.percentile else None

    def keep_side(self) -> tuple[float, float, float | None]:
        c = self.criterion
        return self.keep, c.keep, c.percentile.keep if c.percentile else None


def days_between(earlier: datetime, later: datetime) -> int:
    """Whole calendar days (UTC) from one event time to another: confirmation and grace count days, not
    hours, so figures as of the same days decide alike whatever hour of the day they were published at (an
    import publishes a past day as of its end, live figures come as of the newest event)."""
    return (later.astimezone(UTC).date() - earlier.astimezone(UTC).date()).days


def measure(rule: TierRule, figures: Mapping[str, float], calibration: Calibration | None) -> list[tuple[Bar, float]]:
    """Each criterion of the tier with its thresholds for this evaluation and the person's figure (0 if absent)."""
    return [(Bar.of(c, calibration), float(figures.get(c.metric, 0.0))) for c in rule.criteria]


def reached(rule: TierRule, values: Sequence[tuple[Bar, float]]) -> int:
    """How many criteria of the tier's `at_least` group are at grant."""
    return sum(v >= bar.grant for bar, v in values if rule.in_group(bar.criterion))


def qualifies(rule: TierRule, values: Sequence[tuple[Bar, float]]) -> bool:
    """Every criterion at grant; with `at_least`, its criteria need only `count` of them at grant and the others
    at keep (a holder's level), so missing one strength by a little is not missing it altogether."""
    if rule.at_least is None:
        return all(v >= bar.grant for bar, v in values)
    group = [(bar, v) for bar, v in values if rule.in_group(bar.criterion)]
    needed = [(bar, v) for bar, v in values if not rule.in_group(bar.criterion)]
    return (
        all(v >= bar.grant for bar, v in needed)
        and all(v >= bar.keep for bar, v in group)
        and reached(rule, values) >= rule.at_least.count
    )


def evaluate(
    rules: Rules,
    figures: Mapping[str, float],
    holdings: Mapping[tuple[str, Tier], Holding],
    now: datetime,
    may_grant: bool = True,
    calibration: Calibration | None = None,
) -> list[Decision]:
    """Decisions for one employee at event time `now`; an empty list means nothing changes.

    Grant: every criterion at or above its grant threshold (`qualifies`: with `at_least`, enough of its criteria,
    the others at keep) and the employee has not opted out, at every evaluation for the tier's `confirm_days` of
    event time: a moment's crossing (a burst, a ring's good week) earns nothing. At risk: a held tier with any
    criterion below its keep threshold. Revoke: still below keep on the day the grace period ends, dated at its
    end (deterministic). Days are calendar days (`days_between`).
    Percentile criteria read their thresholds from `calibration` (the company's distribution this period).
    """
    decisions: list[Decision] = []
    for badge_id, badge in rules.badges.items():
        for tier in badge.ordered_tiers():
            rule = badge.tiers[tier]
            current = holdings.get((badge_id, tier), Holding(badge_id, tier))
            values = measure(rule, figures, calibration)
            if not current.held:
                if not (may_grant and qualifies(rule, values)):
                    if current.qualifying_since is not None:
                        after = replace(current, qualifying_since=None)
                        decisions.append(Decision(Action.UNQUALIFY, badge_id, tier, now, after))
                    continue
                since = current.qualifying_since or now
                if days_between(since, now) < rule.confirm_days:
                    if current.qualifying_since is None:
                        after = replace(current, qualifying_since=now)
                        decisions.append(Decision(Action.QUALIFY, badge_id, tier, now, after))
                    continue
                evidence = tuple(_evidence(bar.criterion, v, bar, group=_group_note(rule, bar, v)) for bar, v in values)
                after = replace(
                    current,
                    held=True,
                    grant_seq=current.grant_seq + 1,
                    granted_at=now,
                    evidence=evidence,
                    at_risk_since=None,
                    qualifying_since=None,
                    revoked_at=None,
                    revoke_reason="",
                    revoke_evidence=(),
                    status="invited" if badge.invitation else "",
                    response_seq=0,
                    response_reason="",
                    endorsed_by="",
                    endorsement_note="",
                )
                decisions.append(Decision(Action.GRANT, badge_id, tier, now, after, evidence))
                continue
            below = [(bar, v) for bar, v in values if v < bar.keep]
            if not below:
                if current.at_risk_since is not None:
                    after = replace(current, at_risk_since=None)
                    decisions.append(Decision(Action.RECOVER, badge_id, tier, now, after))
                continue
            since = current.at_risk_since or now
            due = since + timedelta(days=rule.grace_days)
            evidence = tuple(_evidence(bar.criterion, v, bar, keep=True) for bar, v in below)
            if days_between(due, now) >= 0:
                reason = (
                    f"{badge.name} {tier.value}: below the keep threshold since {since.date().isoformat()}, "
                    f"longer than the {rule.grace_days}-day grace period: " + "; ".join(e.description for e in evidence)
                )
                after = replace(
                    current,
                    held=False,
                    at_risk_since=None,
                    revoked_at=due,
                    revoke_reason=reason,
                    revoke_evidence=evidence,
                )
                decisions.append(Decision(Action.REVOKE, badge_id, tier, due, after, evidence, reason))
            elif current.at_risk_since is None:
                after = replace(current, at_risk_since=now)
                decisions.append(Decision(Action.AT_RISK, badge_id, tier, now, after, evidence))
    return decisions


def revocation_due(rules: Rules, holding: Holding) -> datetime | None:
    """When an at-risk holding is revoked if its figures do not recover."""
    if not holding.held or holding.at_risk_since is None:
        return None
    badge = rules.badges.get(holding.badge)
    if badge is None or holding.tier not in badge.tiers:
        return None
    return holding.at_risk_since + timedelta(days=badge.tiers[holding.tier].grace_days)


# ---------------------------------------------------------------- progress


@dataclass(frozen=True)
class RequirementView:
    metric: str
    current: float
    required: float
    description: str


@dataclass(frozen=True)
class ProgressView:
    badge: str
    next_tier: Tier | None
    missing: tuple[RequirementView, ...]
    met: tuple[RequirementView, ...]
    summary: str


def _ranked(bar: Bar) -> str:
    """Where a percentile threshold comes from, for the person's own progress view."""
    c = bar.criterion
    if c.percentile is None:
        return ""
    if bar.grant == float("inf"):
        return "; compared with active colleagues once enough of them are active"
    return f"; what the {fmt(100 - c.percentile.grant)}% of active colleagues with the most reach"


def _missing_text(bar: Bar, current: float) -> str:
    c, grant = bar.criterion, bar.grant
    if grant == float("inf"):
        return f"more {c.label} (now {fmt(current, c.format)}{_ranked(bar)})"
    if c.format == "percent":
        return f"{c.label} of {fmt(grant, 'percent')} (now {fmt(current, 'percent')}{_ranked(bar)})"
    return f"{fmt(grant - current)} more {c.label} ({fmt(current)} of {fmt(grant)}{_ranked(bar)})"


def _met_text(bar: Bar, current: float) -> str:
    c, grant = bar.criterion, bar.grant
    if c.format == "percent":
        return f"{c.label} {fmt(current, 'percent')} (needs {fmt(grant, 'percent')}{_ranked(bar)})"
    return f"{fmt(current)} {c.label} (needs {fmt(grant)}{_ranked(bar)})"


def _spared_text(rule: TierRule, bar: Bar, current: float) -> str:
    """A criterion of an `at_least` group that need not reach grant because enough of the others do."""
    c = bar.criterion
    below = f"below {fmt(bar.grant, c.format)}{_ranked(bar)}"
    return f"{fmt(current, c.format)} {c.label} ({below}, but {_suffice(rule, bar)})"


def _below_keep_text(rule: TierRule, bar: Bar, current: float) -> str:
    """A criterion of an `at_least` group below even the level that keeps the badge."""
    assert rule.at_least is not None
    c = bar.criterion
    return (
        f"{c.label} of at least {fmt(bar.keep, c.format)} (now {fmt(current, c.format)}; the {rule.at_least.label} "
        f"that are not among the {rule.at_least.count} need at least this much)"
    )


def progress(
    rules: Rules,
    figures: Mapping[str, float],
    holdings: Mapping[tuple[str, Tier], Holding],
    may_grant: bool = True,
    calibration: Calibration | None = None,
) -> list[ProgressView]:
    """Per badge, the next tier not held and what is still missing for it, in numbers and in words."""
    views = []
    for badge_id, badge in rules.badges.items():
        held = {t for t in badge.ordered_tiers() if holdings.get((badge_id, t), Holding(badge_id, t)).held}
        pending = [t for t in badge.ordered_tiers() if t not in held]
        if not pending:
            views.append(ProgressView(badge_id, None, (), (), f"You hold every tier of {badge.name}."))
            continue
        tier = pending[0]
        rule = badge.tiers[tier]
        values = measure(rule, figures, calibration)
        group = rule.at_least
        met_in_group = reached(rule, values)
        spared = group is not None and met_in_group >= group.count  # the group's other criteria need only keep
        missing, met = [], []
        for bar, value in values:
            c = bar.criterion
            required = c.grant if bar.grant == float("inf") else bar.grant
            if value >= bar.grant:
                met.append(RequirementView(c.metric, value, required, _met_text(bar, value)))
            elif spared and rule.in_group(c) and value >= bar.keep:
                met.append(RequirementView(c.metric, value, bar.keep, _spared_text(rule, bar, value)))
            elif spared and rule.in_group(c):
                missing.append(RequirementView(c.metric, value, bar.keep, _below_keep_text(rule, bar, value)))
            else:
                missing.append(RequirementView(c.metric, value, required, _missing_text(bar, value)))
        title = badge.name if tier is Tier.SINGLE else f"{badge.name} {tier.value}"
        total = len(missing) + len(met)
        needs = (
            ""
            if group is None
            else f" It needs {group.count} of the {len(group.of)} {group.label} (meets {met_in_group}), and the others "
            "at least at the level that keeps the badge."
        )
        if not missing and not may_grant:
            summary = f"{title}: all {total} requirements met, but you opted out of recognition, so it is not granted."
        elif not missing:
            summary = f"{title}: all {total} requirements met; it is granted with your next score update."
        else:
            summary = f"{title}: {len(met)} of {total} requirements met.{needs} Still missing: " + "; ".join(
                r.description for r in missing
            )
        views.append(ProgressView(badge_id, tier, tuple(missing), tuple(met), summary))
    return views
