"""View models: what each page shows, built from the services' answers. Pure (no I/O, no framework) so
every page's content is tested without a server; the templates only lay it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalyst.engagement.v1 import engagement_pb2 as eng
from catalyst.events.v1 import badges_pb2
from catalyst.feed.v1 import feed_pb2 as feed
from catalyst.recognition.v1 import recognition_pb2 as rec
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

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
    ranking_opt_out: bool
    recognition_opt_out: bool
    hidden_from_lists: bool


def consent(score: eng.GetScoreResponse | None, preferences: rec.GetPreferencesResponse) -> ConsentView:
    """The switches that exist today: ranking (engagement), recognition and lists (recognition). Someone with
    no figures yet has no ranking to leave: the switch shows as not opted out."""
    return ConsentView(
        ranking_opt_out=bool(score and score.ranking_opt_out),
        recognition_opt_out=preferences.preferences.recognition_opt_out,
        hidden_from_lists=preferences.preferences.hidden_from_lists,
    )


def my_data_export(
    recognition: rec.GetMyDataResponse, profile: feed.GetProfileResponse | None, score: eng.GetScoreResponse | None
) -> dict[str, Any]:
    """The download: each service's own answer about me, field names as in proto/, nothing added or left out."""

    def as_dict(message: Message | None) -> dict[str, Any] | None:
        return MessageToDict(message, preserving_proto_field_name=True) if message is not None else None

    return {
        "recognition": as_dict(recognition),
        "feed": as_dict(profile),
        "engagement": as_dict(score),
    }
