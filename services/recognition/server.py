"""gRPC adapter of catalyst.recognition.v1.RecognitionService: requests in, use cases, messages out.

Who sees what: a person sees all of their own badges, evidence, progress and losses; others see only the
badges of visible people (not opted out, not hidden), without evidence, and an ambassador only once the
invitation is accepted. The programme owner (comms) also sees pending and declined invitations and the evidence.
Every look-up of someone else's badges or of candidates states a purpose and is audited (common/audit.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from catalyst.recognition.v1 import recognition_pb2 as pb
from catalyst.recognition.v1 import recognition_pb2_grpc

from services.common.audit import Auditor, stated_purpose
from services.common.auth import Principal, Role, current_principal
from services.common.errors import InvalidArgument, PermissionDenied
from services.recognition import model
from services.recognition.events import TIER_PB, evidence_pb
from services.recognition.handlers import Recognition
from services.recognition.model import EmployeeRecord
from services.recognition.rules import Holding, Rules, progress
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
MAX_ID_CHARS = 128


def _id(value: str, field: str) -> str:
    value = value.strip()
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"at most {MAX_ID_CHARS} characters")
    return value


def badge_pb(record: EmployeeRecord, h: Holding, with_evidence: bool) -> pb.Badge:
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
    )
    if h.granted_at:
        msg.granted_at.FromDatetime(h.granted_at)
    if with_evidence:
        msg.evidence.extend(evidence_pb(h.evidence))
        msg.decline_reason = h.response_reason
        if h.at_risk_since:
            msg.at_risk_since.FromDatetime(h.at_risk_since)
    return msg


def qualifying_pb(record: EmployeeRecord, h: Holding) -> pb.Badge:
    msg = pb.Badge(employee_id=record.employee_id, badge=h.badge, tier=TIER_PB[h.tier])
    if h.qualifying_since:
        msg.qualifying_since.FromDatetime(h.qualifying_since)
    return msg


def my_data_pb(record: EmployeeRecord) -> pb.GetMyDataResponse:
    """Everything the record holds, for its own employee (Art. 15)."""
    response = pb.GetMyDataResponse(
        employee_id=record.employee_id,
        display_name=record.display_name,
        department_id=record.department,
        preferences=_prefs(record),
        ranking_opt_out=record.ranking_opt_out,
        figures=record.figures,
        badges=[badge_pb(record, h, True) for h in record.held()],
        qualifying=[qualifying_pb(record, h) for h in record.holdings.values() if not h.held and h.qualifying_since],
        revoked=[revoked_pb(record, h) for h in record.revoked()],
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

    def _shown_to_others(self, h: Holding, viewer: Principal) -> bool:
        return (
            viewer.has(Role.PROGRAMME_OWNER) or not self._rules.badges[h.badge].invitation or h.status == model.ACCEPTED
        )

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
                badge_pb(record, h, own or viewer.has(Role.PROGRAMME_OWNER))
                for h in held
                if own or self._shown_to_others(h, viewer)
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
        for view in views:
            item = response.progress.add(badge=view.badge, summary=view.summary)
            if view.next_tier is not None:
                item.next_tier = TIER_PB[view.next_tier]
            for source, target_list in ((view.missing, item.missing), (view.met, item.met)):
                target_list.extend(
                    pb.Requirement(signal=r.metric, current=r.current, required=r.required, description=r.description)
                    for r in source
                )
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
        picks = await self._rec.pilot_group(request.size)
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
            ]
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
        return pb.EndorseResponse(badge=badge_pb(record, holding, True))

    async def RespondToInvitation(
        self, request: pb.RespondToInvitationRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondToInvitationResponse:
        viewer = current_principal()
        if not request.badge:
            raise InvalidArgument("badge", "name the invitation badge you answer")
        if len(request.reason) > MAX_NOTE_CHARS:
            raise InvalidArgument("reason", f"at most {MAX_NOTE_CHARS} characters")
        record, holding = await self._rec.respond(viewer.subject, request.badge, request.accept, request.reason.strip())
        return pb.RespondToInvitationResponse(badge=badge_pb(record, holding, True))

    async def SetPreferences(
        self, request: pb.SetPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPreferencesResponse:
        viewer = current_principal()
        if not request.HasField("preferences"):
            raise InvalidArgument("preferences", "send the complete preferences")
        prefs = request.preferences
        record = await self._rec.set_preferences(viewer.subject, prefs.recognition_opt_out, prefs.hidden_from_lists)
        return pb.SetPreferencesResponse(preferences=_prefs(record))

    async def GetPreferences(
        self, request: pb.GetPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPreferencesResponse:
        record = await self._rec.record(current_principal().subject)
        return pb.GetPreferencesResponse(preferences=_prefs(record))

    async def GetMyData(self, request: pb.GetMyDataRequest, context: grpc.aio.ServicerContext) -> pb.GetMyDataResponse:
        return my_data_pb(await self._rec.record(current_principal().subject))

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


def _prefs(record: EmployeeRecord) -> pb.Preferences:
    return pb.Preferences(recognition_opt_out=record.opt_out, hidden_from_lists=record.hidden)
