"""In-memory fakes of the console's ports: a Backend that answers like the three services for one person,
and a SignIn that signs in whoever the test names."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from catalyst.engagement.v1 import engagement_pb2 as eng
from catalyst.events.v1 import badges_pb2, scores_pb2
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
    response.contributions.add(component="helpfulness", activity="answers", count=12, points=634.5,
                               description="12 answers to colleagues in Finance: 634.5 points")
    response.contributions.add(component="content", activity="posts", count=3, points=600,
                               description="3 posts: 600 points")
    response.as_of.FromSeconds(1_767_225_600)  # 2026-01-01
    return response


def score() -> eng.GetScoreResponse:
    response = eng.GetScoreResponse(employee_id="e-1", department_id="finance", display_name="Eva")
    for window in ("7d", "30d", "100d", "decayed"):
        response.windows[window].total = 1.0
    return response


def invitation() -> rec.Badge:
    badge = rec.Badge(employee_id="e-1", badge="intranet_ambassador", tier=badges_pb2.TIER_SINGLE,
                      status=rec.AMBASSADOR_STATUS_INVITED)
    badge.evidence.add(signal="answers_30d", value=12, threshold=10)
    badge.granted_at.FromSeconds(1_767_225_600)
    return badge


def progress() -> rec.GetProgressResponse:
    response = rec.GetProgressResponse()
    item = response.progress.add(badge="helper", next_tier=badges_pb2.TIER_SILVER,
                                 summary="Helper Silver: 1 of 2 requirements met.")
    item.met.add(signal="answers_30d", current=12, required=10, description="answers")
    item.missing.add(signal="accepted_answers_30d", current=1, required=4, description="3 more accepted answers")
    return response


@dataclass
class FakeBackend:
    """One person's figures and choices; calls are recorded; `fail` makes every call fail that way."""

    has_figures: bool = True
    badge_list: list[rec.Badge] = field(default_factory=lambda: [invitation()])
    ranking_opt_out: bool = False
    preferences_: rec.Preferences = field(default_factory=rec.Preferences)
    fail: Failure | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    forgotten: bool = False

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
        return eng.SetRankingPreferenceResponse(opt_out=opt_out)

    async def badges(self, token: str) -> rec.GetBadgesResponse:
        self._enter("badges", token)
        return rec.GetBadgesResponse(badges=self.badge_list)

    async def progress(self, token: str) -> rec.GetProgressResponse:
        self._enter("progress", token)
        return progress()

    async def respond_to_invitation(
        self, token: str, badge: str, accept: bool, reason: str
    ) -> rec.RespondToInvitationResponse:
        self._enter("respond_to_invitation", token)
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
