"""What the console asks of the three services (a port): each call acts as the signed-in person, whose access
token it passes on. The protobuf messages of proto/ are the data; the console adds no rule of its own. A call
about another person carries the purpose the signed-in person stated; the service audits it."""

from __future__ import annotations

import enum
from typing import Protocol

from catalyst.audit.v1 import audit_pb2 as audit
from catalyst.engagement.v1 import engagement_pb2 as eng
from catalyst.feed.v1 import feed_pb2 as feed
from catalyst.recognition.v1 import recognition_pb2 as rec


class Failure(enum.StrEnum):
    """Why a call failed, as far as a page needs to know."""

    UNAVAILABLE = "unavailable"  # the service is down or slow: try again later
    UNAUTHENTICATED = "unauthenticated"  # the token expired or was refused: sign in again
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    REFUSED = "refused"  # invalid argument or failed precondition: the service's message says why
    ERROR = "error"


class BackendError(Exception):
    """A call the service refused or could not answer, with the service's own message."""

    def __init__(self, service: str, failure: Failure, message: str) -> None:
        super().__init__(f"{service}: {failure.value}: {message}")
        self.service = service
        self.failure = failure
        self.message = message


class Backend(Protocol):
    async def score(self, token: str) -> eng.GetScoreResponse: ...

    async def explain(self, token: str, window: str) -> eng.ExplainScoreResponse: ...

    async def set_ranking_opt_out(self, token: str, opt_out: bool) -> eng.SetRankingPreferenceResponse: ...

    async def badges(self, token: str) -> rec.GetBadgesResponse: ...

    async def progress(self, token: str) -> rec.GetProgressResponse: ...

    async def respond_to_invitation(
        self, token: str, badge: str, accept: bool, reason: str, reason_code: str
    ) -> rec.RespondToInvitationResponse: ...

    async def preferences(self, token: str) -> rec.GetPreferencesResponse: ...

    async def set_preferences(self, token: str, preferences: rec.Preferences) -> rec.SetPreferencesResponse: ...

    async def my_data(self, token: str) -> rec.GetMyDataResponse: ...

    async def profile(self, token: str) -> feed.GetProfileResponse: ...

    async def forget_me(self, token: str) -> feed.ForgetMeResponse: ...

    async def engagement_data(self, token: str) -> eng.GetMyDataResponse: ...

    async def feed_data(self, token: str) -> feed.GetMyDataResponse: ...

    async def my_accesses(self, token: str, page_token: str) -> audit.ListMyAccessesResponse: ...

    async def volunteer(self, token: str, withdraw: bool) -> rec.VolunteerResponse: ...

    async def set_badge_shown(self, token: str, badge: str, shown: bool) -> rec.SetBadgeShownResponse: ...

    async def programme(self, token: str, employee_id: str, purpose: str) -> rec.GetProgrammeResponse: ...

    async def catalogue(self, token: str) -> rec.GetCatalogueResponse: ...

    async def candidates(self, token: str, department_id: str, purpose: str) -> rec.ListCandidatesResponse: ...

    async def funnel(self, token: str) -> rec.GetProgrammeFunnelResponse: ...

    async def coverage(self, token: str) -> rec.GetDepartmentCoverageResponse: ...

    async def declines(self, token: str) -> rec.SummariseDeclinesResponse: ...

    async def pilot_group(self, token: str, size: int, purpose: str) -> rec.ProposePilotGroupResponse: ...

    async def record_legitimation(
        self, token: str, request: rec.RecordLegitimationRequest, purpose: str
    ) -> rec.RecordLegitimationResponse: ...

    async def calibration_proposals(self, token: str) -> rec.ListCalibrationProposalsResponse: ...

    async def approve_calibration(self, token: str, proposal_id: str) -> rec.ApproveCalibrationResponse: ...

    async def accesses(
        self, token: str, employee_id: str, actor: str, page_token: str
    ) -> audit.ListAccessesResponse: ...

    async def summarise_accesses(self, token: str) -> audit.SummariseAccessesResponse: ...
