"""The ambassador programme as data (pure: no I/O): consent, volunteering and legitimation.

Recognition proposes, the person decides. What a person chose (badges shown, appreciations shared, a decline,
volunteering) and what the programme gave them (trainings, an agreed time budget, resources, appreciation)
are stored with their recognition record, so one erasure removes all of it. The catalogue of trainings and
resources and the decline reasons live in a validated file (deploy/config/programme.yaml).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.config_files import load_validated
from services.common.errors import FailedPrecondition, InvalidArgument
from services.recognition.rules import Rules

DEFAULT_PROGRAMME_FILE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "programme.yaml"
MAX_APPRECIATION_CHARS = 1000
_ID = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourceKind(StrEnum):
    EARLY_ACCESS = "early_access"
    COMMUNITY_CHANNEL = "community_channel"


class TrainingItem(_Strict):
    name: str = Field(min_length=1)
    hours: float = Field(gt=0, description="length of the training, for planning the time budget")


class ResourceItem(_Strict):
    name: str = Field(min_length=1)
    kind: ResourceKind


class Catalogue(_Strict):
    """deploy/config/programme.yaml: what the programme can offer, and why people may decline."""

    version: int = Field(1, ge=1, le=1)
    trainings: dict[str, TrainingItem] = Field(min_length=1)
    resources: dict[str, ResourceItem] = Field(min_length=1)
    decline_reasons: dict[str, str] = Field(min_length=1, description="reason code -> words shown to the person")
    max_time_budget_hours: float = Field(gt=0, le=160, description="most hours a month a budget may name")

    @field_validator("trainings", "resources", "decline_reasons")
    @classmethod
    def _ids(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not re.match(_ID, k)]
        if bad:
            raise ValueError(f"ids must be lower_snake_case: {', '.join(bad)}")
        return value

    def training(self, training_id: str, field_name: str) -> TrainingItem:
        if training_id not in self.trainings:
            known = ", ".join(self.trainings)
            raise InvalidArgument(field_name, f"unknown training '{training_id[:80]}'; trainings are {known}")
        return self.trainings[training_id]

    def resource(self, resource_id: str, field_name: str) -> ResourceItem:
        if resource_id not in self.resources:
            known = ", ".join(self.resources)
            raise InvalidArgument(field_name, f"unknown resource '{resource_id[:80]}'; resources are {known}")
        return self.resources[resource_id]

    def decline_reason(self, code: str, field_name: str) -> str:
        if code and code not in self.decline_reasons:
            known = ", ".join(self.decline_reasons)
            raise InvalidArgument(field_name, f"unknown reason '{code[:80]}'; reasons are {known}")
        return code


@cache
def load_catalogue(path: Path = DEFAULT_PROGRAMME_FILE) -> Catalogue:
    """Reads and validates the programme file; any problem becomes one readable start-up error."""
    return load_validated(path, Catalogue, "programme file")


@dataclass(frozen=True)
class Training:
    training_id: str
    offered_at: datetime
    offered_by: str
    completed_at: datetime | None = None
    confirmed_by: str = ""


@dataclass(frozen=True)
class TimeBudget:
    hours_per_month: float
    agreed_by_manager: str
    agreed_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class ResourceGrant:
    resource_id: str
    granted_at: datetime
    granted_by: str


@dataclass(frozen=True)
class Appreciation:
    text: str
    author: str
    author_role: str
    at: datetime


@dataclass(frozen=True)
class Programme:
    """One person's part in the programme: their choices and what the programme gave them."""

    volunteered_at: datetime | None = None
    accepted_at: datetime | None = None  # when the person last accepted the invitation (kept for the funnel)
    withdrew_at: datetime | None = None  # an ambassador who accepted and then declined: a lapse
    declined: bool = False  # survives a revocation, so a re-grant does not invite again
    decline_reason: str = ""  # a code of the catalogue; reported only in aggregate
    shown_badges: tuple[str, ...] = ()
    appreciations_shared: bool = False
    trainings: tuple[Training, ...] = ()
    time_budget: TimeBudget | None = None
    resources: tuple[ResourceGrant, ...] = ()
    appreciations: tuple[Appreciation, ...] = ()
    events: int = 0  # programme events written so far: numbers the next one, so its id is deterministic

    @property
    def empty(self) -> bool:
        return self == Programme()

    @property
    def volunteering(self) -> bool:
        return self.volunteered_at is not None


_TIMES = {"volunteered_at", "accepted_at", "withdrew_at", "offered_at", "completed_at", "agreed_at", "granted_at", "at"}


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _times(data: dict[str, Any]) -> dict[str, Any]:
    return {k: datetime.fromisoformat(v) if k in _TIMES and v else v for k, v in data.items()}


def encode(programme: Programme) -> str:
    return json.dumps(_jsonable(asdict(programme)), sort_keys=True)


def decode(raw: str) -> Programme:
    data = _times(json.loads(raw))
    budget = data.get("time_budget")
    return Programme(
        volunteered_at=data.get("volunteered_at"),
        accepted_at=data.get("accepted_at"),
        withdrew_at=data.get("withdrew_at"),
        declined=data.get("declined", False),
        decline_reason=data.get("decline_reason", ""),
        shown_badges=tuple(data.get("shown_badges", ())),
        appreciations_shared=data.get("appreciations_shared", False),
        trainings=tuple(Training(**_times(t)) for t in data.get("trainings", ())),
        time_budget=TimeBudget(**_times(budget)) if budget else None,
        resources=tuple(ResourceGrant(**_times(r)) for r in data.get("resources", ())),
        appreciations=tuple(Appreciation(**_times(a)) for a in data.get("appreciations", ())),
        events=data.get("events", 0),
    )


# ---------------------------------------------------------------- the person's choices


def show_badge(programme: Programme, badge: str, shown: bool) -> Programme:
    badges = [b for b in programme.shown_badges if b != badge] + ([badge] if shown else [])
    return replace(programme, shown_badges=tuple(sorted(badges)))


def volunteer(programme: Programme, at: datetime, withdraw: bool) -> Programme:
    if withdraw:
        return replace(programme, volunteered_at=None)
    return programme if programme.volunteering else replace(programme, volunteered_at=at)


def without_confirmation(rules: Rules, badge_id: str) -> Rules:
    """The rules with the badge's confirmation period lifted, for a volunteer who meets its criteria now."""
    badge = rules.badges[badge_id]
    tiers = {tier: rule.model_copy(update={"confirm_days": 0}) for tier, rule in badge.tiers.items()}
    badges = {**rules.badges, badge_id: badge.model_copy(update={"tiers": tiers})}
    return rules.model_copy(update={"badges": badges})


def answered(
    programme: Programme, accept: bool, reason_code: str, at: datetime, was_accepted: bool = False
) -> Programme:
    """A decline is remembered beyond the invitation; accepting (changing one's mind) clears it. The time of
    the last acceptance stays for the funnel; declining after accepting (`was_accepted`) is a withdrawal."""
    if accept:
        return replace(programme, accepted_at=at, withdrew_at=None, declined=False, decline_reason="")
    withdrew = at if was_accepted else programme.withdrew_at
    return replace(programme, withdrew_at=withdrew, declined=True, decline_reason=reason_code)


# ---------------------------------------------------------------- legitimation (for people who accepted)


class Change(StrEnum):
    OFFER_TRAINING = "offer_training"
    COMPLETE_TRAINING = "complete_training"
    TIME_BUDGET = "time_budget"
    GRANT_RESOURCE = "grant_resource"
    APPRECIATION = "appreciation"


CATALOGUE_CHANGES = frozenset({Change.OFFER_TRAINING, Change.COMPLETE_TRAINING, Change.GRANT_RESOURCE})


@dataclass(frozen=True)
class Legitimation:
    """One change the programme owner (or, for appreciation, management) records for an ambassador."""

    change: Change
    at: datetime
    by: str
    by_role: str
    value: str = ""
    hours_per_month: float = 0.0


def must_have_accepted(status: str, employee_id: str) -> None:
    if status != "accepted":
        raise FailedPrecondition(
            f"{employee_id} has not accepted the ambassador invitation; the invitation must be accepted first"
        )


def legitimate(catalogue: Catalogue, programme: Programme, employee_id: str, change: Legitimation) -> Programme | None:
    """The programme after the change, or None when it is already recorded (a retry)."""
    if change.by == employee_id:
        raise FailedPrecondition("legitimation is given by the programme, not recorded for yourself")
    if change.change is Change.OFFER_TRAINING:
        catalogue.training(change.value, "offer_training")
        if any(t.training_id == change.value for t in programme.trainings):
            return None
        offered = Training(change.value, change.at, change.by)
        return replace(programme, trainings=(*programme.trainings, offered))
    if change.change is Change.COMPLETE_TRAINING:
        catalogue.training(change.value, "complete_training")
        current = next((t for t in programme.trainings if t.training_id == change.value), None)
        if current is None:
            raise FailedPrecondition(f"training '{change.value}' was not offered to {employee_id}; offer it first")
        if current.completed_at is not None:
            return None
        done = replace(current, completed_at=change.at, confirmed_by=change.by)
        return replace(programme, trainings=tuple(done if t is current else t for t in programme.trainings))
    if change.change is Change.TIME_BUDGET:
        if not 0 < change.hours_per_month <= catalogue.max_time_budget_hours:
            raise InvalidArgument(
                "time_budget.hours_per_month", f"must be above 0 and at most {catalogue.max_time_budget_hours:g}"
            )
        if not change.value:
            raise InvalidArgument("time_budget.agreed_by_manager", "name the manager who agreed the time budget")
        if change.value == employee_id:
            raise InvalidArgument("time_budget.agreed_by_manager", "the person's manager agrees it, not the person")
        budget = TimeBudget(change.hours_per_month, change.value, change.at, change.by)
        old = programme.time_budget
        if old and (old.hours_per_month, old.agreed_by_manager) == (budget.hours_per_month, budget.agreed_by_manager):
            return None
        return replace(programme, time_budget=budget)
    if change.change is Change.GRANT_RESOURCE:
        catalogue.resource(change.value, "grant_resource")
        if any(r.resource_id == change.value for r in programme.resources):
            return None
        return replace(programme, resources=(*programme.resources, ResourceGrant(change.value, change.at, change.by)))
    text = change.value.strip()
    if not text:
        raise InvalidArgument("appreciation", "write the appreciation")
    if len(text) > MAX_APPRECIATION_CHARS:
        raise InvalidArgument("appreciation", f"at most {MAX_APPRECIATION_CHARS} characters")
    entry = Appreciation(text, change.by, change.by_role, change.at)
    return replace(programme, appreciations=(*programme.appreciations, entry))


# ---------------------------------------------------------------- aggregates


@dataclass(frozen=True)
class DeclineSummary:
    declined: int  # 0 when fewer than the minimum group size declined
    reasons: dict[str, int]  # only reasons given by at least the minimum group size
    suppressed: bool  # some figure was left out because its group was too small


def summarise_declines(programmes: list[Programme], min_group_size: int) -> DeclineSummary:
    """Declines and their reasons in aggregate only: no figure about fewer than `min_group_size` people."""
    declined = [p for p in programmes if p.declined]
    if len(declined) < min_group_size:
        return DeclineSummary(0, {}, bool(declined))
    counts: dict[str, int] = {}
    for p in declined:
        code = p.decline_reason or "not_given"
        counts[code] = counts.get(code, 0) + 1
    shown = {code: n for code, n in sorted(counts.items()) if n >= min_group_size}
    return DeclineSummary(len(declined), shown, len(shown) < len(counts))


class Lapse(StrEnum):
    """Why an ambassador who accepted is no longer one."""

    INACTIVE = "inactive"  # the badge was revoked: activity stayed below its keep thresholds past the grace period
    WITHDREW = "withdrew"  # the person declined after accepting


@dataclass(frozen=True)
class Journey:
    """One person's way through the programme, as the funnel counts it."""

    department: str
    invited_at: datetime | None  # the ambassador badge's (latest) grant: detected and invited
    accepted_at: datetime | None  # the last acceptance, kept after a lapse
    trained_at: datetime | None  # the first training completed
    declined: bool  # declined and never accepted
    active: bool = False  # holds the ambassador badge and has accepted it
    volunteered: bool = False
    lapse: Lapse | None = None  # accepted, and no longer an ambassador
    lapsed_at: datetime | None = None  # when, if known (a revocation's date expires with the policy's retention)


@dataclass(frozen=True)
class Retention:
    days: int
    cohort: int  # accepted at least `days` ago
    retained: int  # of them, still an ambassador `days` after accepting


@dataclass(frozen=True)
class FunnelRow:
    """One scope's funnel. detected = pending + accepted + declined and accepted = active + lapsed, by
    construction; a figure about fewer than the minimum group size (a median, a lapse reason, a retention
    cohort) is None or left out."""

    scope: str  # a department id, or "" for the whole company
    detected: int
    accepted: int
    declined: int
    trained: int
    accepted_90_days_ago: int  # accepted at least 90 days ago
    active_after_90_days: int  # of those, still an ambassador
    lapsed: int
    median_days_to_accept: float | None  # None unless at least the minimum group size accepted
    median_days_to_train: float | None
    pending: int = 0  # invited, not answered yet
    active: int = 0  # accepted and still an ambassador
    volunteered: int = 0  # offered themselves
    volunteers_invited: int = 0  # of them, invited (they met the criteria)
    lapse_reasons: dict[str, int] = field(default_factory=dict)  # only reasons of at least the minimum group size
    median_days_to_lapse: float | None = None
    retention: tuple[Retention, ...] = ()  # only cohorts of at least the minimum group size


ACTIVE_AFTER = timedelta(days=90)
RETENTION_DAYS = (30, 90, 180)
_DAY = 86_400.0


def _median(values: list[float], min_group_size: int) -> float | None:
    if len(values) < min_group_size:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _days(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() / _DAY if start is not None and end is not None else None


def _present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _retention(accepted: list[Journey], now: datetime, min_group_size: int) -> tuple[Retention, ...]:
    out = []
    for days in RETENTION_DAYS:
        horizon = timedelta(days=days)
        cohort = [j for j in accepted if j.accepted_at is not None and now - j.accepted_at >= horizon]
        if len(cohort) < min_group_size:
            continue
        kept = sum(
            1
            for j in cohort
            if j.lapse is None
            or (j.lapsed_at is not None and j.accepted_at is not None and j.lapsed_at - j.accepted_at >= horizon)
        )
        out.append(Retention(days, len(cohort), kept))
    return tuple(out)


def _row(scope: str, journeys: list[Journey], now: datetime, min_group_size: int) -> FunnelRow:
    invited = [j for j in journeys if j.invited_at is not None]
    accepted = [j for j in invited if j.accepted_at is not None]
    old = [j for j in accepted if j.accepted_at is not None and now - j.accepted_at >= ACTIVE_AFTER]
    lapsed = [j for j in accepted if j.lapse is not None]
    reasons: dict[str, int] = {}
    for j in lapsed:
        assert j.lapse is not None
        reasons[j.lapse.value] = reasons.get(j.lapse.value, 0) + 1
    volunteers = [j for j in journeys if j.volunteered]
    return FunnelRow(
        scope=scope,
        detected=len(invited),
        accepted=len(accepted),
        declined=sum(1 for j in invited if j.accepted_at is None and j.declined),
        trained=sum(1 for j in accepted if j.trained_at is not None),
        accepted_90_days_ago=len(old),
        active_after_90_days=sum(1 for j in old if j.lapse is None),
        lapsed=len(lapsed),
        median_days_to_accept=_median(_present([_days(j.invited_at, j.accepted_at) for j in accepted]), min_group_size),
        median_days_to_train=_median(_present([_days(j.accepted_at, j.trained_at) for j in accepted]), min_group_size),
        pending=sum(1 for j in invited if j.accepted_at is None and not j.declined),
        active=len(accepted) - len(lapsed),
        volunteered=len(volunteers),
        volunteers_invited=sum(1 for j in volunteers if j.invited_at is not None),
        lapse_reasons={r: n for r, n in sorted(reasons.items()) if n >= min_group_size},
        median_days_to_lapse=_median(_present([_days(j.accepted_at, j.lapsed_at) for j in lapsed]), min_group_size),
        retention=_retention(accepted, now, min_group_size),
    )


def funnel(
    journeys: list[Journey], department_sizes: dict[str, int], now: datetime, min_group_size: int
) -> list[FunnelRow]:
    """The company row first, then one row per department of at least `min_group_size` employees (a smaller
    department is not shown: its figures would be about a few people). Durations only over groups of that size."""
    rows = [_row("", journeys, now, min_group_size)] if sum(department_sizes.values()) >= min_group_size else []
    for department, size in sorted(department_sizes.items()):
        if size >= min_group_size:
            rows.append(_row(department, [j for j in journeys if j.department == department], now, min_group_size))
    return rows
