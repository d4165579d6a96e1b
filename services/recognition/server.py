"""gRPC adapter of catalyst.recognition.v1.RecognitionService: requests in, use cases, messages out.

Who sees what: a person sees all of their own badges, evidence, progress, losses and programme record; others
see only the badges of visible people (not opted out, not hidden) that the person shows, without evidence: an
ambassador once the invitation is accepted, a facet badge once its holder chose to show it. The programme owner
(comms) also sees pending and declined invitations, private badges and the evidence, never a decline's reason
(only in aggregate). Every look-up of someone else's data or of candidates states a purpose and is audited
(common/audit.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime

import grpc
from catalyst.recognition.v1 import recognition_pb2 as pb
from catalyst.recognition.v1 import recognition_pb2_grpc

from services.common.audit import PURPOSE_KEY, Auditor, stated_purpose
from services.common.auth import Principal, Role, current_principal
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.recognition import model
from services.recognition.calibration import proposals
from services.recognition.calibration_api import approval_pb, proposals_pb
from services.recognition.calibrator import Calibrator
from services.recognition.events import TIER_PB, evidence_pb
from services.recognition.handlers import Recognition
from services.recognition.insights import AdoptionByCoverage, GroupActivity
from services.recognition.model import EmployeeRecord
from services.recognition.programme import Catalogue, Change, Legitimation
from services.recognition.rules import Holding, ProgressView, Rules, progress
from services.recognition.stream import BadgeEventHub

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RecognitionService"].full_name
STATUS_PB = {
    model.INVITED: pb.AMBASSADOR_STATUS_INVITED,
    model.ACCEPTED: pb.AMBASSADOR_STATUS_ACCEPTED,
    model.DECLINED: pb.AMBASSADOR_STATUS_DECLINED,
}
MAX_NOTE_CHARS = 1000
GET_BADGES = f"{SERVICE_NAME}/GetBadges"
LIST_AMBASSADORS = f"{SERVICE_NAME}/ListAmbassadors"
PROPOSE_PILOT_GROUP = f"{SERVICE_NAME}/ProposePilotGroup"
LIST_CANDIDATES = f"{SERVICE_NAME}/ListCandidates"
LIST_EMERGING = f"{SERVICE_NAME}/ListEmerging"
GET_PROGRAMME = f"{SERVICE_NAME}/GetProgramme"
RECORD_LEGITIMATION = f"{SERVICE_NAME}/RecordLegitimation"
ENDORSE = f"{SERVICE_NAME}/Endorse"
LEGITIMATION_PURPOSE = "record the programme's legitimation"
MAX_ID_CHARS = 128


def _id(value: str, field: str) -> str:
    value = value.strip()
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"at most {MAX_ID_CHARS} characters")
    return value


def _purpose_or(metadata: Iterable[tuple[str, str | bytes]] | None, default: str) -> str:
    """The purpose the caller stated, checked as every purpose is; `default` when they stated none."""
    if any(key.lower() == PURPOSE_KEY for key, _ in metadata or ()):
        return stated_purpose(metadata)
    return default


def badge_pb(record: EmployeeRecord, h: Holding, with_evidence: bool, own: bool = False) -> pb.Badge:
    msg = pb.Badge(
        employee_id=record.employee_id,
        badge=h.badge,
        tier=TIER_PB[h.tier],
        status=STATUS_PB.get(h.status, pb.AMBASSADOR_STATUS_UNSPECIFIED),
        endorsed=bool(h.endorsed_by),
        endorsement_note=h.endorsement_note,
        endorsed_by=h.endorsed_by,
        display_name=record.display_name,
        department_id=record.department,
        shown=h.badge in record.programme.shown_badges or h.status == model.ACCEPTED,
    )
    if h.granted_at:
        msg.granted_at.FromDatetime(h.granted_at)
    if own:
        msg.decline_reason = h.response_reason
    if with_evidence:
        msg.evidence.extend(evidence_pb(h.evidence))
        if h.at_risk_since:
            msg.at_risk_since.FromDatetime(h.at_risk_since)
    return msg


def qualifying_pb(record: EmployeeRecord, h: Holding) -> pb.Badge:
    msg = pb.Badge(employee_id=record.employee_id, badge=h.badge, tier=TIER_PB[h.tier])
    if h.qualifying_since:
        msg.qualifying_since.FromDatetime(h.qualifying_since)
    return msg


def _ts(msg: object, name: str, value: datetime | None) -> None:
    if value is not None:
        getattr(msg, name).FromDatetime(value)


def programme_pb(record: EmployeeRecord, catalogue: Catalogue, status: str) -> pb.ProgrammeRecord:
    """The whole programme record (for the person and the programme owner)."""
    p = record.programme
    msg = pb.ProgrammeRecord(
        employee_id=record.employee_id,
        status=STATUS_PB.get(status, pb.AMBASSADOR_STATUS_UNSPECIFIED),
        volunteering=p.volunteering,
        shown_badges=p.shown_badges,
        appreciations_shared=p.appreciations_shared,
        decline_reason_code=p.decline_reason,
    )
    _ts(msg, "volunteered_at", p.volunteered_at)
    _ts(msg, "accepted_at", p.accepted_at)
    _ts(msg, "withdrew_at", p.withdrew_at)
    for t in p.trainings:
        item = catalogue.trainings.get(t.training_id)
        out = msg.trainings.add(
            training_id=t.training_id,
            name=item.name if item else t.training_id,
            offered_by=t.offered_by,
            confirmed_by=t.confirmed_by,
        )
        _ts(out, "offered_at", t.offered_at)
        _ts(out, "completed_at", t.completed_at)
    if p.time_budget is not None:
        b = p.time_budget
        msg.time_budget.hours_per_month = b.hours_per_month
        msg.time_budget.agreed_by_manager = b.agreed_by_manager
        msg.time_budget.recorded_by = b.recorded_by
        _ts(msg.time_budget, "agreed_at", b.agreed_at)
    for r in p.resources:
        resource = catalogue.resources.get(r.resource_id)
        out_r = msg.resources.add(
            resource_id=r.resource_id,
            name=resource.name if resource else r.resource_id,
            kind=resource.kind.value if resource else "",
            granted_by=r.granted_by,
        )
        _ts(out_r, "granted_at", r.granted_at)
    msg.appreciations.extend(appreciations_pb(record))
    return msg


def appreciations_pb(record: EmployeeRecord) -> list[pb.Appreciation]:
    out = []
    for a in record.programme.appreciations:
        item = pb.Appreciation(text=a.text, author=a.author, author_role=a.author_role)
        item.at.FromDatetime(a.at)
        out.append(item)
    return out


def progress_pb(view: ProgressView) -> pb.BadgeProgress:
    item = pb.BadgeProgress(badge=view.badge, summary=view.summary)
    if view.next_tier is not None:
        item.next_tier = TIER_PB[view.next_tier]
    for source, target_list in ((view.missing, item.missing), (view.met, item.met)):
        target_list.extend(
            pb.Requirement(signal=r.metric, current=r.current, required=r.required, description=r.description)
            for r in source
        )
    return item


def my_data_pb(record: EmployeeRecord, catalogue: Catalogue, status: str) -> pb.GetMyDataResponse:
    """Everything the record holds, for its own employee (Art. 15)."""
    response = pb.GetMyDataResponse(
        employee_id=record.employee_id,
        display_name=record.display_name,
        department_id=record.department,
        preferences=_prefs(record),
        ranking_opt_out=record.ranking_opt_out,
        figures=record.figures,
        badges=[badge_pb(record, h, True, own=True) for h in record.held()],
        qualifying=[qualifying_pb(record, h) for h in record.holdings.values() if not h.held and h.qualifying_since],
        revoked=[revoked_pb(record, h) for h in record.revoked()],
        programme=programme_pb(record, catalogue, status),
        manager=record.manager,
    )
    if record.scored_at:
        response.figures_as_of.FromDatetime(record.scored_at)
    return response


def revoked_pb(record: EmployeeRecord, h: Holding) -> pb.Badge:
    msg = pb.Badge(
        employee_id=record.employee_id,
        badge=h.badge,
        tier=TIER_PB[h.tier],
        display_name=record.display_name,
        department_id=record.department,
        revoke_reason=h.revoke_reason,
    )
    msg.evidence.extend(evidence_pb(h.revoke_evidence))
    if h.granted_at:
        msg.granted_at.FromDatetime(h.granted_at)
    if h.revoked_at:
        msg.revoked_at.FromDatetime(h.revoked_at)
    return msg


class RecognitionServicer(recognition_pb2_grpc.RecognitionServiceServicer):
    def __init__(self, recognition: Recognition, rules: Rules, hub: BadgeEventHub, auditor: Auditor) -> None:
        self._rec = recognition
        self._rules = rules
        self._hub = hub
        self._audit = auditor

    def _order(self, h: Holding) -> tuple[int, int]:
        badges = list(self._rules.badges)
        return badges.index(h.badge) if h.badge in badges else len(badges), TIER_PB[h.tier]

    def _shown_to_others(self, record: EmployeeRecord, h: Holding, viewer: Principal) -> bool:
        return viewer.has(Role.PROGRAMME_OWNER) or record.shown(self._rules, h.badge)

    async def GetBadges(self, request: pb.GetBadgesRequest, context: grpc.aio.ServicerContext) -> pb.GetBadgesResponse:
        viewer = current_principal()
        target = _id(request.employee_id, "employee_id") or viewer.subject
        purpose = self._audit.purpose(viewer, [target], context.invocation_metadata())
        record = await self._rec.record(target)
        own = target == viewer.subject
        await self._audit.record(viewer, [target], GET_BADGES, purpose)
        if not own and not record.visible:
            return pb.GetBadgesResponse()
        held = sorted((h for h in record.held() if h.badge in self._rules.badges), key=self._order)
        response = pb.GetBadgesResponse(
            badges=[
                badge_pb(record, h, own or viewer.has(Role.PROGRAMME_OWNER), own=own)
                for h in held
                if own or self._shown_to_others(record, h, viewer)
            ]
        )
        if own:
            response.revoked.extend(revoked_pb(record, h) for h in sorted(record.revoked(), key=self._order))
        return response

    async def GetProgress(
        self, request: pb.GetProgressRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProgressResponse:
        viewer = current_principal()
        target = _id(request.employee_id, "employee_id") or viewer.subject
        if target != viewer.subject:
            raise PermissionDenied("progress is personal: you can only see your own")
        record = await self._rec.record(target)
        response = pb.GetProgressResponse()
        views = progress(
            self._rules,
            record.figures,
            record.holdings,
            may_grant=not record.opt_out,
            calibration=self._rec.calibration,
        )
        response.progress.extend(progress_pb(view) for view in views)
        return response

    async def ListAmbassadors(
        self, request: pb.ListAmbassadorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAmbassadorsResponse:
        viewer = current_principal()
        owner = viewer.has(Role.PROGRAMME_OWNER)
        statuses = frozenset({model.INVITED, model.ACCEPTED, model.DECLINED} if owner else {model.ACCEPTED})
        purpose = stated_purpose(context.invocation_metadata()) if owner else ""
        found = await self._rec.ambassadors(_id(request.department_id, "department_id"), statuses)
        if owner:  # candidates with their evidence; others see only who accepted to be shown
            await self._audit.record(viewer, [r.employee_id for r, _ in found], LIST_AMBASSADORS, purpose)
        return pb.ListAmbassadorsResponse(ambassadors=[badge_pb(r, h, owner) for r, h in found])

    async def GetDepartmentCoverage(
        self, request: pb.GetDepartmentCoverageRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDepartmentCoverageResponse:
        current_principal().require(Role.PROGRAMME_OWNER)
        shown, without = await self._rec.coverage()
        return pb.GetDepartmentCoverageResponse(
            departments=[
                pb.DepartmentCoverage(
                    department_id=c.department,
                    employees=c.employees,
                    ambassadors=c.ambassadors,
                    ratio=c.ratio,
                    target_ratio=c.target,
                    meets_target=c.ratio >= c.target,
                )
                for c in shown
            ],
            departments_without_ambassador=without,
        )

    async def ProposePilotGroup(
        self, request: pb.ProposePilotGroupRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProposePilotGroupResponse:
        viewer = current_principal()
        viewer.require(Role.PROGRAMME_OWNER)
        purpose = stated_purpose(context.invocation_metadata())
        proposal = await self._rec.pilot_group(request.size)
        picks = proposal.picks
        await self._audit.record(viewer, [p.record.employee_id for p in picks], PROPOSE_PILOT_GROUP, purpose)
        return pb.ProposePilotGroupResponse(
            candidates=[
                pb.PilotCandidate(
                    employee_id=p.record.employee_id,
                    department_id=p.record.department,
                    pilot_score=p.score,
                    reason=p.reason,
                )
                for p in picks
            ],
            uncovered_departments=[
                pb.UncoveredDepartment(department_id=u.department, employees=u.employees, reason=u.reason)
                for u in proposal.uncovered
            ],
            small_departments_uncovered=proposal.small_uncovered,
        )

    async def Endorse(self, request: pb.EndorseRequest, context: grpc.aio.ServicerContext) -> pb.EndorseResponse:
        viewer = current_principal()
        viewer.require(Role.PROGRAMME_OWNER)
        employee_id = _id(request.employee_id, "employee_id")
        if not employee_id:
            raise InvalidArgument("employee_id", "name the badge holder to endorse")
        if not request.badge:
            raise InvalidArgument("badge", f"name a badge: {', '.join(self._rules.badges)}")
        if len(request.note) > MAX_NOTE_CHARS:
            raise InvalidArgument("note", f"at most {MAX_NOTE_CHARS} characters")
        record, holding = await self._rec.endorse(viewer.subject, employee_id, request.badge, request.note.strip())
        await self._audit.record(
            viewer, [employee_id], ENDORSE, "endorse the ambassador (the answer shows the evidence)"
        )
        return pb.EndorseResponse(badge=badge_pb(record, holding, True))

    async def RespondToInvitation(
        self, request: pb.RespondToInvitationRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondToInvitationResponse:
        viewer = current_principal()
        if not request.badge:
            raise InvalidArgument("badge", "name the invitation badge you answer")
        if len(request.reason) > MAX_NOTE_CHARS:
            raise InvalidArgument("reason", f"at most {MAX_NOTE_CHARS} characters")
        record, holding = await self._rec.respond(
            viewer.subject,
            request.badge,
            request.accept,
            request.reason.strip(),
            _id(request.reason_code, "reason_code"),
        )
        return pb.RespondToInvitationResponse(badge=badge_pb(record, holding, True, own=True))

    async def SetPreferences(
        self, request: pb.SetPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPreferencesResponse:
        viewer = current_principal()
        if not request.HasField("preferences"):
            raise InvalidArgument("preferences", "send the complete preferences")
        prefs = request.preferences
        record = await self._rec.set_preferences(
            viewer.subject, prefs.recognition_opt_out, prefs.hidden_from_lists, prefs.appreciations_shared
        )
        return pb.SetPreferencesResponse(preferences=_prefs(record))

    async def GetPreferences(
        self, request: pb.GetPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPreferencesResponse:
        record = await self._rec.record(current_principal().subject)
        return pb.GetPreferencesResponse(preferences=_prefs(record))

    async def GetMyData(self, request: pb.GetMyDataRequest, context: grpc.aio.ServicerContext) -> pb.GetMyDataResponse:
        record = await self._rec.record(current_principal().subject)
        return my_data_pb(record, self._rec.catalogue, record.status(self._rules))

    async def SetBadgeShown(
        self, request: pb.SetBadgeShownRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetBadgeShownResponse:
        if not request.badge:
            raise InvalidArgument("badge", f"name a badge: {', '.join(self._rules.badges)}")
        record = await self._rec.show_badge(current_principal().subject, _id(request.badge, "badge"), request.shown)
        return pb.SetBadgeShownResponse(shown_badges=record.programme.shown_badges)

    async def Volunteer(self, request: pb.VolunteerRequest, context: grpc.aio.ServicerContext) -> pb.VolunteerResponse:
        record, criteria = await self._rec.volunteer(current_principal().subject, request.withdraw)
        status = record.status(self._rules)
        response = pb.VolunteerResponse(
            volunteering=record.programme.volunteering, status=STATUS_PB.get(status, pb.AMBASSADOR_STATUS_UNSPECIFIED)
        )
        if not status:
            response.progress.CopyFrom(progress_pb(criteria))
        return response

    async def ListCandidates(
        self, request: pb.ListCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCandidatesResponse:
        viewer = current_principal()
        viewer.require(Role.PROGRAMME_OWNER)
        purpose = stated_purpose(context.invocation_metadata())
        found = await self._rec.candidates(_id(request.department_id, "department_id"))
        await self._audit.record(viewer, [c.record.employee_id for c in found], LIST_CANDIDATES, purpose)
        response = pb.ListCandidatesResponse()
        for c in found:
            badge = (
                badge_pb(c.record, c.holding, True)
                if c.holding is not None
                else pb.Badge(
                    employee_id=c.record.employee_id,
                    badge=self._rules.coverage.badge,
                    display_name=c.record.display_name,
                    department_id=c.record.department,
                )
            )
            item = response.candidates.add(
                badge=badge,
                detected=c.holding is not None,
                volunteered=c.record.programme.volunteering,
                progress=progress_pb(c.criteria),
            )
            _ts(item, "volunteered_at", c.record.programme.volunteered_at)
        return response

    async def ListEmerging(
        self, request: pb.ListEmergingRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListEmergingResponse:
        viewer = current_principal()
        viewer.require(Role.PROGRAMME_OWNER)
        purpose = stated_purpose(context.invocation_metadata())
        found = await self._rec.emerging(_id(request.department_id, "department_id"))
        await self._audit.record(viewer, [e.record.employee_id for e in found], LIST_EMERGING, purpose)
        response = pb.ListEmergingResponse()
        for e in found:
            item = response.emerging.add(
                employee_id=e.record.employee_id,
                display_name=e.record.display_name,
                department_id=e.record.department,
                progress=progress_pb(e.criteria),
                expected=e.outlook.expected,
            )
            _ts(item, "qualifying_since", e.outlook.qualifying_since)
            _ts(item, "expected_at", e.outlook.expected_at)
        return response

    async def SummariseDeclines(
        self, request: pb.SummariseDeclinesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SummariseDeclinesResponse:
        current_principal().require(Role.PROGRAMME_OWNER, Role.WORKS_COUNCIL)
        summary = await self._rec.decline_summary()
        return pb.SummariseDeclinesResponse(
            declined=summary.declined,
            reasons=[pb.DeclineReasonCount(reason_code=c, count=n) for c, n in summary.reasons.items()],
            min_group_size=self._rec.min_group_size,
            suppressed=summary.suppressed,
        )

    async def RecordLegitimation(
        self, request: pb.RecordLegitimationRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordLegitimationResponse:
        viewer = current_principal()
        kind = request.WhichOneof("change")
        if kind is None:
            raise InvalidArgument("change", "name one change: " + ", ".join(c.value for c in Change))
        if kind == Change.APPRECIATION:
            viewer.require(Role.PROGRAMME_OWNER, Role.HR)
        else:
            viewer.require(Role.PROGRAMME_OWNER)
        employee_id = _id(request.employee_id, "employee_id")
        if not employee_id:
            raise InvalidArgument("employee_id", "name the ambassador")
        role = Role.PROGRAMME_OWNER if viewer.has(Role.PROGRAMME_OWNER) else Role.HR
        change = Legitimation(Change(kind), datetime.now(UTC), viewer.subject, role.value)
        if kind == Change.TIME_BUDGET:
            budget = request.time_budget
            change = replace(
                change,
                value=_id(budget.agreed_by_manager, "time_budget.agreed_by_manager"),
                hours_per_month=budget.hours_per_month,
            )
        elif kind == Change.APPRECIATION:
            change = replace(change, value=request.appreciation.strip())
        else:
            change = replace(change, value=_id(getattr(request, kind), kind))
        purpose = _purpose_or(context.invocation_metadata(), LEGITIMATION_PURPOSE)
        record = await self._rec.legitimate(employee_id, change)
        await self._audit.record(viewer, [employee_id], RECORD_LEGITIMATION, purpose)
        return pb.RecordLegitimationResponse(
            programme=programme_pb(record, self._rec.catalogue, record.status(self._rules))
        )

    async def GetProgramme(
        self, request: pb.GetProgrammeRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProgrammeResponse:
        viewer = current_principal()
        target = _id(request.employee_id, "employee_id") or viewer.subject
        purpose = self._audit.purpose(viewer, [target], context.invocation_metadata())
        record = await self._rec.record(target)
        await self._audit.record(viewer, [target], GET_PROGRAMME, purpose)
        status = record.status(self._rules)
        if target == viewer.subject or viewer.has(Role.PROGRAMME_OWNER):
            full = programme_pb(record, self._rec.catalogue, status)
            if target != viewer.subject:
                full.decline_reason_code = ""  # reported only in aggregate
            return pb.GetProgrammeResponse(programme=full)
        shown = pb.ProgrammeRecord(employee_id=target)
        if record.visible and status == model.ACCEPTED:
            shown.status = pb.AMBASSADOR_STATUS_ACCEPTED
            if record.programme.appreciations_shared:
                shown.appreciations_shared = True
                shown.appreciations.extend(appreciations_pb(record))
        return pb.GetProgrammeResponse(programme=shown)

    async def GetProgrammeFunnel(
        self, request: pb.GetProgrammeFunnelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProgrammeFunnelResponse:
        current_principal().require(Role.PROGRAMME_OWNER, Role.WORKS_COUNCIL)
        response = pb.GetProgrammeFunnelResponse(min_group_size=self._rec.min_group_size)
        for row in await self._rec.funnel(datetime.now(UTC)):
            stage = response.stages.add(
                department_id=row.scope,
                detected=row.detected,
                accepted=row.accepted,
                declined=row.declined,
                trained=row.trained,
                accepted_90_days_ago=row.accepted_90_days_ago,
                active_after_90_days=row.active_after_90_days,
                lapsed=row.lapsed,
            )
            stage.pending, stage.active = row.pending, row.active
            stage.volunteered, stage.volunteers_invited = row.volunteered, row.volunteers_invited
            stage.lapse_reasons.extend(pb.LapseReasonCount(reason=r, count=n) for r, n in row.lapse_reasons.items())
            stage.retention.extend(
                pb.Retention(days=r.days, cohort=r.cohort, retained=r.retained) for r in row.retention
            )
            for name in ("median_days_to_accept", "median_days_to_train", "median_days_to_lapse"):
                if getattr(row, name) is not None:
                    setattr(stage, name, getattr(row, name))
        response.adoption.CopyFrom(adoption_pb(await self._rec.adoption_by_coverage()))
        response.adoption_history.extend(
            pb.AdoptionWeek(week=week, adoption=adoption_pb(a)) for week, a in await self._rec.adoption_history()
        )
        return response

    async def GetManagerActivity(
        self, request: pb.GetManagerActivityRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetManagerActivityResponse:
        current_principal().require(Role.PROGRAMME_OWNER, Role.WORKS_COUNCIL)
        view = await self._rec.role_models()
        return pb.GetManagerActivityResponse(
            departments=[
                pb.ManagerActivity(department_id=r.scope, managers=group_pb(r.managers), others=group_pb(r.others))
                for r in view.rows
            ],
            too_small=view.too_small,
            small_departments=view.small_departments,
            min_group_size=self._rec.min_group_size,
        )

    def _calibrator(self) -> Calibrator:
        if self._rec.calibrator is None:
            raise FailedPrecondition("this recognition service does not calibrate badge criteria")
        return self._rec.calibrator

    async def ListCalibrationProposals(
        self, request: pb.ListCalibrationProposalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCalibrationProposalsResponse:
        current_principal().require(Role.PROGRAMME_OWNER, Role.WORKS_COUNCIL)
        calibrator = self._calibrator()
        proposal, everyone = await calibrator.propose(datetime.now(UTC))
        found = proposals(self._rules, proposal, calibrator.calibration, everyone, self._rec.min_group_size)
        return proposals_pb(self._rules, proposal, found, await calibrator.approvals(), self._rec.min_group_size)

    async def ApproveCalibration(
        self, request: pb.ApproveCalibrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApproveCalibrationResponse:
        viewer = current_principal()
        viewer.require(Role.PROGRAMME_OWNER)
        wanted = _id(request.proposal_id, "proposal_id")
        if not wanted:
            raise InvalidArgument("proposal_id", "name the proposal ListCalibrationProposals gave")
        approval = await self._calibrator().approve(wanted, viewer.subject, datetime.now(UTC))
        return pb.ApproveCalibrationResponse(approval=approval_pb(approval))

    async def GetCatalogue(
        self, request: pb.GetCatalogueRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCatalogueResponse:
        current_principal()
        c = self._rec.catalogue
        return pb.GetCatalogueResponse(
            trainings=[pb.CatalogueItem(id=k, name=t.name, hours=t.hours) for k, t in c.trainings.items()],
            resources=[pb.CatalogueItem(id=k, name=r.name, kind=r.kind.value) for k, r in c.resources.items()],
            decline_reasons=[pb.CatalogueItem(id=k, name=words) for k, words in c.decline_reasons.items()],
            max_time_budget_hours=c.max_time_budget_hours,
        )

    async def StreamBadgeEvents(
        self, request: pb.StreamBadgeEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamBadgeEventsResponse]:
        viewer = current_principal()
        sub = self._hub.subscribe(
            viewer.subject, viewer.has(Role.PROGRAMME_OWNER), _id(request.department_id, "department_id")
        )
        try:
            while True:
                env = await sub.next()
                if env is None:
                    return
                yield pb.StreamBadgeEventsResponse(event=env)
        finally:
            self._hub.unsubscribe(sub)


def group_pb(g: GroupActivity) -> pb.GroupActivity:
    return pb.GroupActivity(
        people=g.people,
        active_7d_share=g.active_7d_share,
        active_30d_share=g.active_30d_share,
        mean_active_days_30d=g.mean_active_days_30d,
        mean_active_weeks_12w=g.mean_active_weeks_12w,
        median_score_30d=g.median_score_30d,
    )


def adoption_pb(a: AdoptionByCoverage) -> pb.AdoptionByCoverage:
    msg = pb.AdoptionByCoverage(departments_with=a.departments_with, departments_without=a.departments_without)
    if a.with_ambassadors is not None:
        msg.with_ambassadors.CopyFrom(group_pb(a.with_ambassadors))
    if a.without_ambassadors is not None:
        msg.without_ambassadors.CopyFrom(group_pb(a.without_ambassadors))
    return msg


def _prefs(record: EmployeeRecord) -> pb.Preferences:
    return pb.Preferences(
        recognition_opt_out=record.opt_out,
        hidden_from_lists=record.hidden,
        appreciations_shared=record.programme.appreciations_shared,
    )
