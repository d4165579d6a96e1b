"""The Backend over gRPC: one channel per service, the caller's token (and a stated purpose) on every call,
gRPC status codes turned into the console's Failure kinds. The audit service is served by recognition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from catalyst.audit.v1 import audit_pb2 as audit
from catalyst.audit.v1 import audit_pb2_grpc
from catalyst.engagement.v1 import engagement_pb2 as eng
from catalyst.engagement.v1 import engagement_pb2_grpc
from catalyst.feed.v1 import feed_pb2 as feed
from catalyst.feed.v1 import feed_pb2_grpc
from catalyst.recognition.v1 import recognition_pb2 as rec
from catalyst.recognition.v1 import recognition_pb2_grpc

from services.common.audit import PURPOSE_KEY
from services.common.grpc_client import bearer
from services.console.backend import BackendError, Failure
from services.console.config import ConsoleSettings

R = TypeVar("R")

_FAILURES = {
    grpc.StatusCode.UNAVAILABLE: Failure.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: Failure.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Failure.UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: Failure.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: Failure.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND: Failure.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: Failure.REFUSED,
    grpc.StatusCode.FAILED_PRECONDITION: Failure.REFUSED,
    grpc.StatusCode.ALREADY_EXISTS: Failure.REFUSED,
    grpc.StatusCode.OUT_OF_RANGE: Failure.REFUSED,
}


class GrpcBackend:
    """Channels open on first use (inside the server's event loop) and close with `close()`."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self._settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            target = getattr(self._settings, f"{service}_target")
            self._channels[service] = grpc.aio.insecure_channel(target)
        return self._channels[service]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def _call(
        self, service: str, rpc: Callable[..., Awaitable[R]], request: Any, token: str, purpose: str = ""
    ) -> R:
        metadata = (*bearer(token), *(((PURPOSE_KEY, purpose),) if purpose else ()))
        try:
            return await rpc(request, metadata=metadata, timeout=self._settings.call_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            failure = _FAILURES.get(exc.code(), Failure.ERROR)
            raise BackendError(service, failure, exc.details() or exc.code().name.lower()) from None

    def _engagement(self) -> engagement_pb2_grpc.EngagementServiceStub:
        return engagement_pb2_grpc.EngagementServiceStub(self._channel("engagement"))

    def _recognition(self) -> recognition_pb2_grpc.RecognitionServiceStub:
        return recognition_pb2_grpc.RecognitionServiceStub(self._channel("recognition"))

    def _audit(self) -> audit_pb2_grpc.AuditServiceStub:
        return audit_pb2_grpc.AuditServiceStub(self._channel("recognition"))

    def _feed(self) -> feed_pb2_grpc.FeedServiceStub:
        return feed_pb2_grpc.FeedServiceStub(self._channel("feed"))

    async def score(self, token: str) -> eng.GetScoreResponse:
        return await self._call("engagement", self._engagement().GetScore, eng.GetScoreRequest(), token)

    async def explain(self, token: str, window: str) -> eng.ExplainScoreResponse:
        request = eng.ExplainScoreRequest(window=window)
        return await self._call("engagement", self._engagement().ExplainScore, request, token)

    async def set_ranking_opt_out(self, token: str, opt_out: bool) -> eng.SetRankingPreferenceResponse:
        request = eng.SetRankingPreferenceRequest(opt_out=opt_out)
        return await self._call("engagement", self._engagement().SetRankingPreference, request, token)

    async def badges(self, token: str) -> rec.GetBadgesResponse:
        return await self._call("recognition", self._recognition().GetBadges, rec.GetBadgesRequest(), token)

    async def progress(self, token: str) -> rec.GetProgressResponse:
        return await self._call("recognition", self._recognition().GetProgress, rec.GetProgressRequest(), token)

    async def respond_to_invitation(
        self, token: str, badge: str, accept: bool, reason: str, reason_code: str
    ) -> rec.RespondToInvitationResponse:
        request = rec.RespondToInvitationRequest(badge=badge, accept=accept, reason=reason, reason_code=reason_code)
        return await self._call("recognition", self._recognition().RespondToInvitation, request, token)

    async def preferences(self, token: str) -> rec.GetPreferencesResponse:
        request = rec.GetPreferencesRequest()
        return await self._call("recognition", self._recognition().GetPreferences, request, token)

    async def set_preferences(self, token: str, preferences: rec.Preferences) -> rec.SetPreferencesResponse:
        request = rec.SetPreferencesRequest(preferences=preferences)
        return await self._call("recognition", self._recognition().SetPreferences, request, token)

    async def my_data(self, token: str) -> rec.GetMyDataResponse:
        return await self._call("recognition", self._recognition().GetMyData, rec.GetMyDataRequest(), token)

    async def profile(self, token: str) -> feed.GetProfileResponse:
        return await self._call("feed", self._feed().GetProfile, feed.GetProfileRequest(), token)

    async def forget_me(self, token: str) -> feed.ForgetMeResponse:
        return await self._call("feed", self._feed().ForgetMe, feed.ForgetMeRequest(), token)

    async def engagement_data(self, token: str) -> eng.GetMyDataResponse:
        return await self._call("engagement", self._engagement().GetMyData, eng.GetMyDataRequest(), token)

    async def feed_data(self, token: str) -> feed.GetMyDataResponse:
        return await self._call("feed", self._feed().GetMyData, feed.GetMyDataRequest(), token)

    async def my_accesses(self, token: str, page_token: str) -> audit.ListMyAccessesResponse:
        request = audit.ListMyAccessesRequest(page_token=page_token)
        return await self._call("audit", self._audit().ListMyAccesses, request, token)

    async def volunteer(self, token: str, withdraw: bool) -> rec.VolunteerResponse:
        request = rec.VolunteerRequest(withdraw=withdraw)
        return await self._call("recognition", self._recognition().Volunteer, request, token)

    async def set_badge_shown(self, token: str, badge: str, shown: bool) -> rec.SetBadgeShownResponse:
        request = rec.SetBadgeShownRequest(badge=badge, shown=shown)
        return await self._call("recognition", self._recognition().SetBadgeShown, request, token)

    async def programme(self, token: str, employee_id: str, purpose: str) -> rec.GetProgrammeResponse:
        request = rec.GetProgrammeRequest(employee_id=employee_id)
        return await self._call("recognition", self._recognition().GetProgramme, request, token, purpose)

    async def catalogue(self, token: str) -> rec.GetCatalogueResponse:
        return await self._call("recognition", self._recognition().GetCatalogue, rec.GetCatalogueRequest(), token)

    async def candidates(self, token: str, department_id: str, purpose: str) -> rec.ListCandidatesResponse:
        request = rec.ListCandidatesRequest(department_id=department_id)
        return await self._call("recognition", self._recognition().ListCandidates, request, token, purpose)

    async def funnel(self, token: str) -> rec.GetProgrammeFunnelResponse:
        request = rec.GetProgrammeFunnelRequest()
        return await self._call("recognition", self._recognition().GetProgrammeFunnel, request, token)

    async def coverage(self, token: str) -> rec.GetDepartmentCoverageResponse:
        request = rec.GetDepartmentCoverageRequest()
        return await self._call("recognition", self._recognition().GetDepartmentCoverage, request, token)

    async def declines(self, token: str) -> rec.SummariseDeclinesResponse:
        request = rec.SummariseDeclinesRequest()
        return await self._call("recognition", self._recognition().SummariseDeclines, request, token)

    async def pilot_group(self, token: str, size: int, purpose: str) -> rec.ProposePilotGroupResponse:
        request = rec.ProposePilotGroupRequest(size=size)
        return await self._call("recognition", self._recognition().ProposePilotGroup, request, token, purpose)

    async def record_legitimation(
        self, token: str, request: rec.RecordLegitimationRequest, purpose: str
    ) -> rec.RecordLegitimationResponse:
        return await self._call("recognition", self._recognition().RecordLegitimation, request, token, purpose)

    async def calibration_proposals(self, token: str) -> rec.ListCalibrationProposalsResponse:
        request = rec.ListCalibrationProposalsRequest()
        return await self._call("recognition", self._recognition().ListCalibrationProposals, request, token)

    async def approve_calibration(self, token: str, proposal_id: str) -> rec.ApproveCalibrationResponse:
        request = rec.ApproveCalibrationRequest(proposal_id=proposal_id)
        return await self._call("recognition", self._recognition().ApproveCalibration, request, token)

    async def accesses(
        self, token: str, employee_id: str, actor: str, page_token: str
    ) -> audit.ListAccessesResponse:
        request = audit.ListAccessesRequest(employee_id=employee_id, actor=actor, page_token=page_token)
        return await self._call("audit", self._audit().ListAccesses, request, token)

    async def summarise_accesses(self, token: str) -> audit.SummariseAccessesResponse:
        request = audit.SummariseAccessesRequest()
        return await self._call("audit", self._audit().SummariseAccesses, request, token)
