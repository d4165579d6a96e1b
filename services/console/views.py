"""View models: what each page shows, built from the services' answers. Pure (no I/O, no framework) so
every page's content is tested without a server; the templates only lay it out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalyst.engagement.v1 import engagement_pb2 as eng
from catalyst.events.v1 import badges_pb2, envelope_pb2
from catalyst.recognition.v1 import recognition_pb2 as rec
from google.protobuf.message import Message

from services.common.policy import Policy, Rankings
from services.console.charts import BarChart, bar_chart

COMPONENTS = ("content", "conversation", "reach", "helpfulness", "innovation", "profile", "pilot")
TIERS = {
    badges_pb2.TIER_BRONZE: "bronze",
    badges_pb2.TIER_SILVER: "silver",
    badges_pb2.TIER_GOLD: "gold",
    badges_pb2.TIER_SINGLE: "",
}


def timestamp(message: Message, field: str) -> datetime | None:
    """A Timestamp field as an aware datetime, None when the service left it unset."""
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=UTC)


def badge_title(badge_id: str) -> str:
    """intranet_ambassador -> Intranet Ambassador (badge ids are data in deploy/config/badges.yaml)."""
    return " ".join(word.capitalize() for word in badge_id.split("_"))


def share(part: float, whole: float) -> float:
    """A fraction in [0, 1] for a bar; nothing of nothing is an empty bar."""
    return min(max(part / whole, 0.0), 1.0) if whole > 0 else 0.0


@dataclass(frozen=True)
class ComponentBar:
    component: str
    points: float
    fraction: float


@dataclass(frozen=True)
class ContributionRow:
    component: str
    activity: str
    count: float
    points: float
    description: str
    fraction: float


@dataclass(frozen=True)
class ActivityView:
    window: str
    windows: tuple[str, ...]
    total: float
    as_of: datetime | None
    components: tuple[ComponentBar, ...]
    contributions: tuple[ContributionRow, ...]
    notes: tuple[str, ...]
    ranking_opt_out: bool


def activity(score: eng.GetScoreResponse, explanation: eng.ExplainScoreResponse) -> ActivityView:
    """My activity and why: each component's part of the window's total, and the activities behind it."""
    total = explanation.total
    components = tuple(
        ComponentBar(name, getattr(explanation.scores, name), share(getattr(explanation.scores, name), total))
        for name in COMPONENTS
    )
    largest = max((c.points for c in explanation.contributions), default=0.0)
    contributions = tuple(
        ContributionRow(c.component, c.activity, c.count, c.points, c.description, share(c.points, largest))
        for c in sorted(explanation.contributions, key=lambda c: -c.points)
    )
    return ActivityView(
        window=explanation.window,
        windows=tuple(score.windows.keys()) or (explanation.window,),
        total=total,
        as_of=timestamp(explanation, "as_of") or timestamp(score, "as_of"),
        components=components,
        contributions=contributions,
        notes=tuple(explanation.notes),
        ranking_opt_out=score.ranking_opt_out,
    )


@dataclass(frozen=True)
class EvidenceRow:
    signal: str
    value: float
    threshold: float


@dataclass(frozen=True)
class BadgeRow:
    badge: str
    title: str
    tier: str
    granted_at: datetime | None
    accepted: bool
    endorsed: bool
    endorsement_note: str
    at_risk_since: datetime | None
    evidence: tuple[EvidenceRow, ...]
    # Facet badges (no invitation to answer) start private; the holder may show them to colleagues.
    facet: bool
    shown: bool


@dataclass(frozen=True)
class LostBadgeRow:
    title: str
    tier: str
    reason: str
    revoked_at: datetime | None


@dataclass(frozen=True)
class RequirementBar:
    signal: str
    current: float
    required: float
    fraction: float
    met: bool
    description: str


@dataclass(frozen=True)
class ProgressRow:
    title: str
    next_tier: str
    summary: str
    requirements: tuple[RequirementBar, ...]
    met: int


@dataclass(frozen=True)
class BadgesView:
    held: tuple[BadgeRow, ...]
    invitations: tuple[BadgeRow, ...]
    declined: tuple[BadgeRow, ...]
    lost: tuple[LostBadgeRow, ...]
    progress: tuple[ProgressRow, ...]


def _badge_row(badge: rec.Badge) -> BadgeRow:
    return BadgeRow(
        badge=badge.badge,
        title=badge_title(badge.badge),
        tier=TIERS.get(badge.tier, ""),
        granted_at=timestamp(badge, "granted_at"),
        accepted=badge.status == rec.AMBASSADOR_STATUS_ACCEPTED,
        endorsed=badge.endorsed,
        endorsement_note=badge.endorsement_note,
        at_risk_since=timestamp(badge, "at_risk_since"),
        evidence=tuple(EvidenceRow(e.signal, e.value, e.threshold) for e in badge.evidence),
        facet=badge.status == rec.AMBASSADOR_STATUS_UNSPECIFIED,
        shown=badge.shown,
    )


def _requirement(requirement: rec.Requirement, met: bool) -> RequirementBar:
    return RequirementBar(
        requirement.signal,
        requirement.current,
        requirement.required,
        1.0 if met else share(requirement.current, requirement.required),
        met,
        requirement.description,
    )


def badges(held: rec.GetBadgesResponse, progress: rec.GetProgressResponse) -> BadgesView:
    """My badges, the invitations waiting for my answer, what I lost and why, and how far the next tier is."""
    invited = tuple(_badge_row(b) for b in held.badges if b.status == rec.AMBASSADOR_STATUS_INVITED)
    declined = tuple(_badge_row(b) for b in held.badges if b.status == rec.AMBASSADOR_STATUS_DECLINED)
    answered = {rec.AMBASSADOR_STATUS_INVITED, rec.AMBASSADOR_STATUS_DECLINED}
    return BadgesView(
        held=tuple(_badge_row(b) for b in held.badges if b.status not in answered),
        invitations=invited,
        declined=declined,
        lost=tuple(
            LostBadgeRow(badge_title(b.badge), TIERS.get(b.tier, ""), b.revoke_reason, timestamp(b, "revoked_at"))
            for b in held.revoked
        ),
        progress=tuple(
            ProgressRow(
                title=badge_title(p.badge),
                next_tier=TIERS.get(p.next_tier, ""),
                summary=p.summary,
                requirements=tuple(_requirement(r, True) for r in p.met)
                + tuple(_requirement(r, False) for r in p.missing),
                met=len(p.met),
            )
            for p in progress.progress
        ),
    )


@dataclass(frozen=True)
class ConsentView:
    # The ranking switch exists only where the policy has rankings that people opt in to.
    rankings_offered: bool
    ranked: bool
    recognition_opt_out: bool
    hidden_from_lists: bool
    appreciations_shared: bool


def rankings_offered(policy: Policy) -> bool:
    """Rankings exist only where the policy has them, and then only for people who opt in."""
    return policy.visibility.rankings is Rankings.OPTED_IN


def consent(
    policy: Policy, engagement: eng.GetMyDataResponse | None, preferences: rec.GetPreferencesResponse
) -> ConsentView:
    """The switches the services keep: ranking (engagement, only an explicit opt-in counts), recognition,
    lists and shared appreciation (recognition)."""
    return ConsentView(
        rankings_offered=rankings_offered(policy),
        ranked=bool(engagement and engagement.ranking_choice == "opted_in"),
        recognition_opt_out=preferences.preferences.recognition_opt_out,
        hidden_from_lists=preferences.preferences.hidden_from_lists,
        appreciations_shared=preferences.preferences.appreciations_shared,
    )


STATUSES = {
    rec.AMBASSADOR_STATUS_INVITED: "invited",
    rec.AMBASSADOR_STATUS_ACCEPTED: "accepted",
    rec.AMBASSADOR_STATUS_DECLINED: "declined",
}


@dataclass(frozen=True)
class TrainingRow:
    training_id: str
    name: str
    offered_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class ProgrammeView:
    employee_id: str
    status: str
    volunteering: bool
    volunteered_at: datetime | None
    trainings: tuple[TrainingRow, ...]
    hours_per_month: float
    agreed_by_manager: str
    budget_agreed_at: datetime | None
    resources: tuple[tuple[str, datetime | None], ...]
    appreciations: tuple[tuple[str, str, datetime | None], ...]
    appreciations_shared: bool


def programme(record: rec.ProgrammeRecord) -> ProgrammeView:
    """A person's part in the programme: status, volunteering, trainings, time budget, resources, appreciation."""
    return ProgrammeView(
        employee_id=record.employee_id,
        status=STATUSES.get(record.status, ""),
        volunteering=record.volunteering,
        volunteered_at=timestamp(record, "volunteered_at"),
        trainings=tuple(
            TrainingRow(t.training_id, t.name or t.training_id, timestamp(t, "offered_at"),
                        timestamp(t, "completed_at"))
            for t in record.trainings
        ),
        hours_per_month=record.time_budget.hours_per_month,
        agreed_by_manager=record.time_budget.agreed_by_manager,
        budget_agreed_at=timestamp(record.time_budget, "agreed_at"),
        resources=tuple((r.name or r.resource_id, timestamp(r, "granted_at")) for r in record.resources),
        appreciations=tuple((a.text, a.author_role, timestamp(a, "at")) for a in record.appreciations),
        appreciations_shared=record.appreciations_shared,
    )


@dataclass(frozen=True)
class AccessRow:
    at: datetime | None
    employee_id: str
    actor: str
    roles: str
    method: str
    purpose: str


def access_rows(envelopes: list[envelope_pb2.Envelope]) -> tuple[AccessRow, ...]:
    """Audit entries as lines: when, whose data, who looked (and as what), which call, why."""
    return tuple(
        AccessRow(
            at=timestamp(e, "occurred_at"),
            employee_id=e.employee_id,
            actor=e.data_accessed.actor,
            roles=", ".join(e.data_accessed.actor_roles),
            method=e.data_accessed.method.rsplit("/", 1)[-1],
            purpose=e.data_accessed.purpose,
        )
        for e in envelopes
    )


@dataclass(frozen=True)
class CandidateRow:
    employee_id: str
    name: str
    department_id: str
    status: str
    detected: bool
    volunteered: bool
    volunteered_at: datetime | None
    met: int
    required: int
    fraction: float
    missing: tuple[str, ...]
    evidence: tuple[EvidenceRow, ...]
    decline_reason: str


def candidates(response: rec.ListCandidatesResponse) -> tuple[CandidateRow, ...]:
    """Detected candidates beside volunteers, each with the same criteria: met, missing, and the evidence."""
    rows = []
    for c in response.candidates:
        met, missing = len(c.progress.met), len(c.progress.missing)
        rows.append(
            CandidateRow(
                employee_id=c.badge.employee_id,
                name=c.badge.display_name or c.badge.employee_id,
                department_id=c.badge.department_id,
                status=STATUSES.get(c.badge.status, ""),
                detected=c.detected,
                volunteered=c.volunteered,
                volunteered_at=timestamp(c, "volunteered_at"),
                met=met,
                required=met + missing,
                fraction=share(met, met + missing),
                missing=tuple(r.description or r.signal for r in c.progress.missing),
                evidence=tuple(EvidenceRow(e.signal, e.value, e.threshold) for e in c.badge.evidence),
                decline_reason=c.badge.decline_reason,
            )
        )
    return tuple(rows)


FUNNEL_STEPS = ("detected", "accepted", "trained", "active_after_90_days", "lapsed", "declined")


@dataclass(frozen=True)
class FunnelView:
    min_group_size: int
    company: rec.FunnelStage | None
    chart: BarChart | None
    departments: tuple[rec.FunnelStage, ...]


def funnel(response: rec.GetProgrammeFunnelResponse) -> FunnelView:
    """The company's funnel as a chart (steps scaled to those detected), departments as a table; the service
    leaves out every group below the minimum size."""
    company = next((s for s in response.stages if not s.department_id), None)
    chart = (
        bar_chart([(step, float(getattr(company, step))) for step in FUNNEL_STEPS], scale=float(company.detected))
        if company is not None and company.detected > 0
        else None
    )
    return FunnelView(
        min_group_size=response.min_group_size,
        company=company,
        chart=chart,
        departments=tuple(s for s in response.stages if s.department_id),
    )


@dataclass(frozen=True)
class CoverageView:
    chart: BarChart | None
    departments: tuple[rec.DepartmentCoverage, ...]
    without: tuple[str, ...]


def coverage(response: rec.GetDepartmentCoverageResponse) -> CoverageView:
    """Each department's share of ambassadors against its target: a department without one stands out."""
    departments = tuple(sorted(response.departments, key=lambda d: (d.ambassadors > 0, d.ratio, d.department_id)))
    chart = (
        bar_chart([(d.department_id, d.ratio) for d in departments], [d.target_ratio for d in departments])
        if departments
        else None
    )
    return CoverageView(chart, departments, tuple(response.departments_without_ambassador))


@dataclass(frozen=True)
class PolicyRow:
    section: str
    name: str
    value: str


def policy_rows(policy: Policy) -> tuple[PolicyRow, ...]:
    """The active policy file, setting by setting, as the services read it."""
    rows = []

    def walk(section: str, prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(section, f"{prefix}.{key}" if prefix else key, inner)
        else:
            rows.append(PolicyRow(section, prefix, str(value)))

    for section, values in policy.model_dump(mode="json").items():
        walk(section, "", values)
    return tuple(rows)



@dataclass(frozen=True)
class ThresholdCell:
    """A grant / keep pair and how many reach grant; `comparable` is false while the calibration compares
    nobody (too few active colleagues), `meeting` None when the service withheld a count below the minimum."""

    comparable: bool
    grant: float
    keep: float
    meeting: int | None


@dataclass(frozen=True)
class CalibrationRow:
    badge: str
    tier: str
    label: str
    grant_share: float  # the top share of active colleagues whose figure sets the grant threshold, in percent
    keep_share: float
    grant_floor: float
    keep_floor: float
    proposed: ThresholdCell
    in_force: ThresholdCell
    changes: bool


@dataclass(frozen=True)
class ApprovalRow:
    proposal_id: str
    approved_by: str
    approved_at: datetime | None
    population: int


@dataclass(frozen=True)
class CalibrationView:
    proposal_id: str
    population: int
    min_population: int
    min_group_size: int
    rows: tuple[CalibrationRow, ...]
    approvals: tuple[ApprovalRow, ...]

    @property
    def approvable(self) -> bool:
        return self.population > 0 and bool(self.rows)


def _cell(threshold: rec.CalibrationThreshold) -> ThresholdCell:
    meeting = None if threshold.suppressed else threshold.meeting
    return ThresholdCell(math.isfinite(threshold.grant), threshold.grant, threshold.keep, meeting)


def calibration(response: rec.ListCalibrationProposalsResponse) -> CalibrationView:
    """Each percentile criterion with the proposal beside what is in force; approvals newest first."""
    rows = tuple(
        CalibrationRow(
            badge=badge_title(c.badge),
            tier=TIERS.get(c.tier, ""),
            label=c.label,
            grant_share=100 - c.grant_percentile,
            keep_share=100 - c.keep_percentile,
            grant_floor=c.grant_floor,
            keep_floor=c.keep_floor,
            proposed=_cell(c.proposed),
            in_force=_cell(c.in_force),
            changes=(c.proposed.grant, c.proposed.keep) != (c.in_force.grant, c.in_force.keep),
        )
        for c in response.criteria
    )
    approvals = tuple(
        ApprovalRow(a.proposal_id, a.approved_by, timestamp(a, "approved_at"), a.population)
        for a in response.approvals
    )
    return CalibrationView(
        response.proposal_id, response.population, response.min_population, response.min_group_size, rows, approvals
    )
