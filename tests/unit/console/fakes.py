"""In-memory fakes of the console's ports: a Backend that answers like the three services for one person,
and a SignIn that signs in whoever the test names."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from catalyst.audit.v1 import audit_pb2 as audit
from catalyst.engagement.v1 import engagement_pb2 as eng
from catalyst.events.v1 import audit_pb2 as audit_events
from catalyst.events.v1 import badges_pb2, envelope_pb2, scores_pb2
from catalyst.feed.v1 import feed_pb2 as feed
from catalyst.recognition.v1 import recognition_pb2 as rec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.common.auth import Role
from services.console.backend import BackendError, Failure
from services.console.signin import Identity, SignInFailed


def explanation(window: str = "30d") -> eng.ExplainScoreResponse:
    response = eng.ExplainScoreResponse(
        employee_id="e-1",
        window=window,
        total=1234.5,
        scores=scores_pb2.ComponentScores(content=600.0, helpfulness=634.5, total=1234.5),
        notes=["Reactions from the same colleague count once a day."],
    )
    response.contributions.add(
        component="helpfulness",
        activity="answers",
        count=12,
        points=634.5,
        description="12 answers to colleagues in Finance: 634.5 points",
    )
    response.contributions.add(
        component="content", activity="posts", count=3, points=600, description="3 posts: 600 points"
    )
    response.as_of.FromSeconds(1_767_225_600)  # 2026-01-01
    return response


def calibration(approved: list[str]) -> rec.ListCalibrationProposalsResponse:
    """One calibrated criterion: the proposal asks more than what is in force; one count is withheld."""
    response = rec.ListCalibrationProposalsResponse(
        proposal_id="p-1", population=240, min_population=30, min_group_size=5
    )
    response.criteria.add(
        badge="intranet_ambassador",
        tier=badges_pb2.TIER_SINGLE,
        metric="answers_100d",
        label="answers to colleagues' questions in the last 100 days",
        grant_percentile=90,
        keep_percentile=75,
        grant_floor=5,
        keep_floor=3,
        proposed=rec.CalibrationThreshold(grant=14, keep=9, meeting=24),
        in_force=rec.CalibrationThreshold(grant=12, keep=8, suppressed=True),
    )
    for proposal_id in reversed(approved):
        approval = response.approvals.add(proposal_id=proposal_id, approved_by="po-1", population=240)
        approval.approved_at.FromSeconds(1_767_225_600)
    return response


def score() -> eng.GetScoreResponse:
    response = eng.GetScoreResponse(employee_id="e-1", department_id="finance", display_name="Eva")
    for window in ("7d", "30d", "100d", "decayed"):
        response.windows[window].total = 1.0
    return response


def invitation() -> rec.Badge:
    badge = rec.Badge(
        employee_id="e-1",
        badge="intranet_ambassador",
        tier=badges_pb2.TIER_SINGLE,
        status=rec.AMBASSADOR_STATUS_INVITED,
    )
    badge.evidence.add(signal="answers_30d", value=12, threshold=10)
    badge.granted_at.FromSeconds(1_767_225_600)
    return badge


def progress() -> rec.GetProgressResponse:
    response = rec.GetProgressResponse()
    item = response.progress.add(
        badge="helper", next_tier=badges_pb2.TIER_SILVER, summary="Helper Silver: 1 of 2 requirements met."
    )
    item.met.add(signal="answers_30d", current=12, required=10, description="answers")
    item.missing.add(signal="accepted_answers_30d", current=1, required=4, description="3 more accepted answers")
    return response


def facet() -> rec.Badge:
    badge = rec.Badge(employee_id="e-1", badge="helper", tier=badges_pb2.TIER_BRONZE)
    badge.granted_at.FromSeconds(1_767_225_600)
    return badge


def access(employee: str = "e-1", purpose: str = "check the ambassador's evidence") -> envelope_pb2.Envelope:
    envelope = envelope_pb2.Envelope(
        event_id="a-1",
        employee_id=employee,
        data_accessed=audit_events.DataAccessed(
            actor="po-1",
            actor_roles=["employee", "programme_owner"],
            method="/catalyst.recognition.v1.RecognitionService/ListCandidates",
            purpose=purpose,
        ),
    )
    envelope.occurred_at.FromSeconds(1_767_225_600)
    return envelope


def candidates() -> rec.ListCandidatesResponse:
    response = rec.ListCandidatesResponse()
    found = response.candidates.add(badge=invitation(), detected=True)
    found.badge.display_name, found.badge.department_id = "Eva", "finance"
    found.progress.met.add(signal="answers_30d", current=12, required=10, description="answers")
    volunteer = response.candidates.add(
        badge=rec.Badge(employee_id="e-2", badge="intranet_ambassador", display_name="Jo", department_id="it"),
        volunteered=True,
    )
    volunteer.progress.missing.add(signal="posts_30d", current=1, required=3, description="2 more posts")
    return response


def funnel() -> rec.GetProgrammeFunnelResponse:
    response = rec.GetProgrammeFunnelResponse(min_group_size=5)
    response.stages.add(
        detected=20,
        accepted=12,
        declined=5,
        trained=6,
        accepted_90_days_ago=8,
        active_after_90_days=7,
        lapsed=1,
        median_days_to_accept=3.5,
    )
    response.stages.add(department_id="finance", detected=6, accepted=5, declined=1, trained=2)
    return response


def coverage() -> rec.GetDepartmentCoverageResponse:
    response = rec.GetDepartmentCoverageResponse(departments_without_ambassador=["sales"])
    response.departments.add(
        department_id="finance", employees=40, ambassadors=2, ratio=0.05, target_ratio=0.04, meets_target=True
    )
    response.departments.add(department_id="sales", employees=30, ambassadors=0, ratio=0.0, target_ratio=0.04)
    return response


def catalogue() -> rec.GetCatalogueResponse:
    return rec.GetCatalogueResponse(
        trainings=[rec.CatalogueItem(id="moderation", name="Moderating communities", hours=4)],
        resources=[rec.CatalogueItem(id="early_access", name="Early access", kind="early_access")],
        decline_reasons=[rec.CatalogueItem(id="no_time", name="I have no time for it now")],
        max_time_budget_hours=8,
    )


@dataclass
class FakeBackend:
    """One person's figures and choices; calls are recorded; `fail` makes every call fail that way."""

    has_figures: bool = True
    badge_list: list[rec.Badge] = field(default_factory=lambda: [invitation(), facet()])
    ranking_opt_out: bool = False
    preferences_: rec.Preferences = field(default_factory=rec.Preferences)
    fail: Failure | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    forgotten: bool = False
    ranking_choice: str = ""
    record: rec.ProgrammeRecord = field(default_factory=lambda: rec.ProgrammeRecord(employee_id="e-1"))
    purposes: list[str] = field(default_factory=list)
    reason_codes: list[str] = field(default_factory=list)
    recorded: list[rec.RecordLegitimationRequest] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)

    def _enter(self, name: str, token: str) -> None:
        self.calls.append((name, token))
        if self.fail is not None:
            raise BackendError("engagement", self.fail, f"fake refusal of {name}")

    async def score(self, token: str) -> eng.GetScoreResponse:
        self._enter("score", token)
        if not self.has_figures:
            raise BackendError("engagement", Failure.NOT_FOUND, "no figures for e-1")
        response = score()
        response.ranking_opt_out = self.ranking_opt_out
        return response

    async def explain(self, token: str, window: str) -> eng.ExplainScoreResponse:
        self._enter("explain", token)
        if window not in ("", "7d", "30d", "100d", "decayed"):
            raise BackendError("engagement", Failure.REFUSED, f"window: {window!r} is not a window")
        return explanation(window or "30d")

    async def set_ranking_opt_out(self, token: str, opt_out: bool) -> eng.SetRankingPreferenceResponse:
        self._enter("set_ranking_opt_out", token)
        self.ranking_opt_out = opt_out
        self.ranking_choice = "opted_out" if opt_out else "opted_in"
        return eng.SetRankingPreferenceResponse(opt_out=opt_out)

    async def badges(self, token: str) -> rec.GetBadgesResponse:
        self._enter("badges", token)
        return rec.GetBadgesResponse(badges=self.badge_list)

    async def progress(self, token: str) -> rec.GetProgressResponse:
        self._enter("progress", token)
        return progress()

    async def respond_to_invitation(
        self, token: str, badge: str, accept: bool, reason: str, reason_code: str
    ) -> rec.RespondToInvitationResponse:
        self._enter("respond_to_invitation", token)
        self.reason_codes.append(reason_code)
        for held in self.badge_list:
            if held.badge == badge and held.status == rec.AMBASSADOR_STATUS_INVITED:
                held.status = rec.AMBASSADOR_STATUS_ACCEPTED if accept else rec.AMBASSADOR_STATUS_DECLINED
                held.decline_reason = "" if accept else reason
                return rec.RespondToInvitationResponse(badge=held)
        raise BackendError("recognition", Failure.REFUSED, f"badge: no open invitation to {badge!r}")

    async def preferences(self, token: str) -> rec.GetPreferencesResponse:
        self._enter("preferences", token)
        return rec.GetPreferencesResponse(preferences=self.preferences_)

    async def set_preferences(self, token: str, preferences: rec.Preferences) -> rec.SetPreferencesResponse:
        self._enter("set_preferences", token)
        self.preferences_ = preferences
        return rec.SetPreferencesResponse(preferences=preferences)

    async def my_data(self, token: str) -> rec.GetMyDataResponse:
        self._enter("my_data", token)
        return rec.GetMyDataResponse(employee_id="e-1", display_name="Eva", badges=self.badge_list)

    async def profile(self, token: str) -> feed.GetProfileResponse:
        self._enter("profile", token)
        return feed.GetProfileResponse(profile=feed.Profile(employee_id="e-1", display_name="Eva"))

    async def forget_me(self, token: str) -> feed.ForgetMeResponse:
        self._enter("forget_me", token)
        self.forgotten = True
        return feed.ForgetMeResponse()

    async def engagement_data(self, token: str) -> eng.GetMyDataResponse:
        self._enter("engagement_data", token)
        response = eng.GetMyDataResponse(employee_id="e-1", ranking_choice=self.ranking_choice)
        if self.has_figures:
            response.days.add(date="2026-01-01").counts["posts"] = 3
        return response

    async def feed_data(self, token: str) -> feed.GetMyDataResponse:
        self._enter("feed_data", token)
        return feed.GetMyDataResponse(profile=feed.Profile(employee_id="e-1", display_name="Eva"))

    async def my_accesses(self, token: str, page_token: str) -> audit.ListMyAccessesResponse:
        self._enter("my_accesses", token)
        return audit.ListMyAccessesResponse(accesses=[access()], next_page_token="" if page_token else "next")

    async def volunteer(self, token: str, withdraw: bool) -> rec.VolunteerResponse:
        self._enter("volunteer", token)
        self.record.volunteering = not withdraw
        if not withdraw:
            self.record.volunteered_at.FromSeconds(1_767_225_600)
        return rec.VolunteerResponse(volunteering=not withdraw)

    async def set_badge_shown(self, token: str, badge: str, shown: bool) -> rec.SetBadgeShownResponse:
        self._enter("set_badge_shown", token)
        for held in self.badge_list:
            if held.badge == badge:
                held.shown = shown
        return rec.SetBadgeShownResponse(shown_badges=[b.badge for b in self.badge_list if b.shown])

    async def programme(self, token: str, employee_id: str, purpose: str) -> rec.GetProgrammeResponse:
        self._enter("programme", token)
        self.purposes.append(purpose)
        return rec.GetProgrammeResponse(programme=self.record)

    async def catalogue(self, token: str) -> rec.GetCatalogueResponse:
        self._enter("catalogue", token)
        return catalogue()

    async def candidates(self, token: str, department_id: str, purpose: str) -> rec.ListCandidatesResponse:
        self._enter("candidates", token)
        self.purposes.append(purpose)
        return candidates()

    async def funnel(self, token: str) -> rec.GetProgrammeFunnelResponse:
        self._enter("funnel", token)
        return funnel()

    async def coverage(self, token: str) -> rec.GetDepartmentCoverageResponse:
        self._enter("coverage", token)
        return coverage()

    async def declines(self, token: str) -> rec.SummariseDeclinesResponse:
        self._enter("declines", token)
        return rec.SummariseDeclinesResponse(
            declined=5, reasons=[rec.DeclineReasonCount(reason_code="no_time", count=5)], min_group_size=5
        )

    async def pilot_group(self, token: str, size: int, purpose: str) -> rec.ProposePilotGroupResponse:
        self._enter("pilot_group", token)
        self.purposes.append(purpose)
        return rec.ProposePilotGroupResponse(
            candidates=[
                rec.PilotCandidate(
                    employee_id="e-3", department_id="it", pilot_score=4.5, reason="attended 2 workshops"
                )
            ],
            uncovered_departments=[
                rec.UncoveredDepartment(department_id="sales", employees=30, reason="nobody shows pilot signals")
            ],
            small_departments_uncovered=2,
        )

    async def record_legitimation(
        self, token: str, request: rec.RecordLegitimationRequest, purpose: str
    ) -> rec.RecordLegitimationResponse:
        self._enter("record_legitimation", token)
        self.recorded.append(request)
        self.purposes.append(purpose)
        if request.WhichOneof("change") == "complete_training":
            training = self.record.trainings.add(training_id=request.complete_training, name="Moderating communities")
            training.completed_at.FromSeconds(1_767_225_600)
        return rec.RecordLegitimationResponse(programme=self.record)

    async def calibration_proposals(self, token: str) -> rec.ListCalibrationProposalsResponse:
        self._enter("calibration_proposals", token)
        return calibration(self.approved)

    async def approve_calibration(self, token: str, proposal_id: str) -> rec.ApproveCalibrationResponse:
        self._enter("approve_calibration", token)
        if proposal_id != "p-1":
            raise BackendError("recognition", Failure.REFUSED, "proposal_id: this is not the newest proposal")
        self.approved.append(proposal_id)
        return rec.ApproveCalibrationResponse(approval=calibration(self.approved).approvals[0])

    async def accesses(self, token: str, employee_id: str, actor: str, page_token: str) -> audit.ListAccessesResponse:
        self._enter("accesses", token)
        return audit.ListAccessesResponse(accesses=[access(employee_id or "e-1")])

    async def summarise_accesses(self, token: str) -> audit.SummariseAccessesResponse:
        self._enter("summarise_accesses", token)
        return audit.SummariseAccessesResponse(
            counts=[
                audit.AccessCount(
                    actor_role="programme_owner",
                    method="/x.Y/ListCandidates",
                    purpose="invite ambassadors",
                    accesses=7,
                    people=6,
                    actors=1,
                )
            ],
            total_accesses=7,
        )


@dataclass
class FakeSignIn:
    """Signs in `subject` with `roles` at once (no identity provider); `refuse` makes the answer fail."""

    subject: str = "e-1"
    roles: frozenset[Role] = frozenset({Role.EMPLOYEE})
    refuse: bool = False
    ttl: float = 3600.0

    async def redirect(self, request: Request, redirect_uri: str) -> Response:
        return RedirectResponse(redirect_uri + "?code=fake", status_code=302)

    async def complete(self, request: Request) -> Identity:
        if self.refuse:
            raise SignInFailed("access_denied")
        return Identity(self.subject, self.roles, f"token-of-{self.subject}", time.time() + self.ttl)
