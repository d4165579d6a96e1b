"""Programme views over everyone's figures (pure: no I/O): managers as role models, and adoption where
ambassadors are.

Both are aggregates for the programme owner and the works council, read from the engagement figures
recognition last evaluated for each registered employee. A group is shown only with at least the policy's
minimum group size, so no figure is about a few people; no manager is ranked, named or counted alone.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

ACTIVE_DAYS = "active_days_30d"  # days with own activity in the last 30 (a ScoreChanged signal)
ACTIVE_WEEKS = "active_weeks_12w"  # weeks with own activity in the last 12
SCORE_30D = "score.30d.total"
SCORE_7D = "score.7d.total"
ADOPTION_WEEKS_KEPT = 104  # two years of weekly snapshots of adoption with and without ambassadors


@dataclass(frozen=True)
class Member:
    """One registered employee, as the aggregates see them."""

    department: str
    manager: bool
    ambassador: bool  # accepted the ambassador invitation and still holds the badge
    figures: Mapping[str, float]


@dataclass(frozen=True)
class GroupActivity:
    people: int
    active_7d_share: float  # earned any points in the last 7 days
    active_30d_share: float  # any own activity in the last 30 days
    mean_active_days_30d: float
    mean_active_weeks_12w: float
    median_score_30d: float


def group(members: list[Member], min_group_size: int) -> GroupActivity | None:
    """The group's activity, or None below the minimum group size."""
    if len(members) < min_group_size or not members:
        return None
    n = len(members)

    def share(test: list[bool]) -> float:
        return sum(test) / n

    return GroupActivity(
        people=n,
        active_7d_share=share([m.figures.get(SCORE_7D, 0.0) > 0 for m in members]),
        active_30d_share=share([m.figures.get(ACTIVE_DAYS, 0.0) > 0 for m in members]),
        mean_active_days_30d=statistics.fmean(m.figures.get(ACTIVE_DAYS, 0.0) for m in members),
        mean_active_weeks_12w=statistics.fmean(m.figures.get(ACTIVE_WEEKS, 0.0) for m in members),
        median_score_30d=statistics.median(m.figures.get(SCORE_30D, 0.0) for m in members),
    )


@dataclass(frozen=True)
class RoleModelRow:
    scope: str  # a department id, or "" for the whole company
    managers: GroupActivity
    others: GroupActivity


@dataclass(frozen=True)
class RoleModels:
    rows: list[RoleModelRow]  # the company first (when both groups are large enough), then departments
    too_small: list[str]  # departments of at least the minimum size with fewer managers or others than that
    small_departments: int  # departments below the minimum size: counted, never named


def _split(members: list[Member], scope: str, min_group_size: int) -> RoleModelRow | None:
    managers = group([m for m in members if m.manager], min_group_size)
    others = group([m for m in members if not m.manager], min_group_size)
    return RoleModelRow(scope, managers, others) if managers and others else None


def role_models(members: list[Member], min_group_size: int) -> RoleModels:
    """Managers' activity against everyone else's, company-wide and per department, only where both groups
    have at least `min_group_size` people: whether leadership uses the intranet, never who does."""
    by_department: dict[str, list[Member]] = {}
    for m in members:
        by_department.setdefault(m.department, []).append(m)
    rows: list[RoleModelRow] = []
    company = _split(members, "", min_group_size)
    if company:
        rows.append(company)
    too_small: list[str] = []
    small = 0
    for department, people in sorted(by_department.items()):
        if len(people) < min_group_size:
            small += 1
            continue
        row = _split(people, department, min_group_size)
        if row:
            rows.append(row)
        else:
            too_small.append(department)
    return RoleModels(rows, too_small, small)


@dataclass(frozen=True)
class AdoptionByCoverage:
    """Colleagues (not the ambassadors themselves) in departments with an ambassador against departments without."""

    with_ambassadors: GroupActivity | None
    departments_with: int
    without_ambassadors: GroupActivity | None
    departments_without: int


def adoption_by_coverage(members: list[Member], min_group_size: int) -> AdoptionByCoverage:
    """Only departments of at least `min_group_size` employees take part, and a group smaller than that is
    None; the ambassadors' own activity is left out, so the comparison is about their colleagues."""
    by_department: dict[str, list[Member]] = {}
    for m in members:
        by_department.setdefault(m.department, []).append(m)
    covered = {
        d for d, people in by_department.items() if len(people) >= min_group_size and any(m.ambassador for m in people)
    }
    uncovered = {d for d, people in by_department.items() if len(people) >= min_group_size and d not in covered}
    colleagues = [m for m in members if not m.ambassador]
    return AdoptionByCoverage(
        group([m for m in colleagues if m.department in covered], min_group_size),
        len(covered),
        group([m for m in colleagues if m.department in uncovered], min_group_size),
        len(uncovered),
    )


def week_of(at: datetime) -> date:
    """The Monday of the event-time week a snapshot of adoption stands for."""
    day = at.date()
    return day - timedelta(days=day.weekday())


def encode_adoption(view: AdoptionByCoverage) -> str:
    return json.dumps(asdict(view), sort_keys=True)


def decode_adoption(raw: str) -> AdoptionByCoverage:
    data = json.loads(raw)

    def group_of(value: dict[str, float] | None) -> GroupActivity | None:
        return GroupActivity(**value) if value else None

    return AdoptionByCoverage(
        group_of(data["with_ambassadors"]),
        data["departments_with"],
        group_of(data["without_ambassadors"]),
        data["departments_without"],
    )
