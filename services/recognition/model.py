"""What recognition knows about one employee, and the decisions people make (pure: no I/O).

Endorsement and invitation answers are rules about people, not figures: consent comes first, so the programme
owner endorses only a visible holder who accepted the invitation (or, for a facet badge, chose to show it);
only the holder answers an invitation; an opted-out employee gets no new badges and is shown nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.recognition.programme import Programme
from services.recognition.rules import Holding, Rules, Tier

INVITED, ACCEPTED, DECLINED = "invited", "accepted", "declined"


@dataclass(frozen=True)
class EmployeeRecord:
    """One employee's recognition state; `rev` guards concurrent writers (compare-and-set)."""

    employee_id: str
    rev: int = 0
    version: int = 0
    scored_at: datetime | None = None
    figures: dict[str, float] = field(default_factory=dict)
    department: str = ""
    display_name: str = ""
    registered: bool = False
    manager: bool = False  # the directory's flag: counted only in aggregates (managers as role models)
    opt_out: bool = False
    hidden: bool = False
    ranking_opt_out: bool = False
    holdings: dict[tuple[str, Tier], Holding] = field(default_factory=dict)
    programme: Programme = field(default_factory=Programme)

    @property
    def exists(self) -> bool:
        return self.rev > 0

    @property
    def visible(self) -> bool:
        """Shown to other people (lists, coverage, streams, other people's badge views)."""
        return not (self.opt_out or self.hidden)

    def shown(self, rules: Rules, badge_id: str) -> bool:
        """Whether colleagues may see this badge: an invitation once accepted, a facet badge once the holder
        chose to show it."""
        badge = rules.badges.get(badge_id)
        if badge is None:
            return False
        if badge.invitation:
            holding = self.top_holding(rules, badge_id)
            return holding is not None and holding.status == ACCEPTED
        return badge_id in self.programme.shown_badges

    def status(self, rules: Rules) -> str:
        """The answer to the ambassador invitation ("" without one)."""
        holding = self.top_holding(rules, rules.coverage.badge)
        return holding.status if holding is not None else ""

    def held(self) -> list[Holding]:
        return [h for h in self.holdings.values() if h.held]

    def revoked(self) -> list[Holding]:
        return [h for h in self.holdings.values() if not h.held and h.revoked_at is not None]

    def top_holding(self, rules: Rules, badge_id: str) -> Holding | None:
        """The highest held tier of a badge."""
        badge = rules.badges.get(badge_id)
        if badge is None:
            return None
        for tier in reversed(badge.ordered_tiers()):
            holding = self.holdings.get((badge_id, tier))
            if holding is not None and holding.held:
                return holding
        return None


def known_badge(rules: Rules, badge_id: str, field_name: str = "badge") -> None:
    if badge_id not in rules.badges:
        raise InvalidArgument(field_name, f"unknown badge '{badge_id[:80]}'; badges are {', '.join(rules.badges)}")


def endorse(rules: Rules, record: EmployeeRecord, badge_id: str, admin: str, note: str) -> Holding | None:
    """The endorsed holding, or None when this admin already endorsed it with the same note (a retry)."""
    known_badge(rules, badge_id)
    if admin == record.employee_id:
        raise PermissionDenied("you cannot endorse yourself")
    holding = record.top_holding(rules, badge_id)
    name = rules.badges[badge_id].name
    if holding is None:
        raise FailedPrecondition(
            f"{record.employee_id} does not hold the {name} badge; endorsement recognises a holder, "
            "it cannot create one"
        )
    if not record.visible:
        raise FailedPrecondition(f"{record.employee_id} opted out of recognition or of being shown")
    if holding.status == DECLINED:
        raise FailedPrecondition(f"{record.employee_id} declined the {name} invitation")
    if rules.badges[badge_id].invitation and holding.status != ACCEPTED:
        raise FailedPrecondition(
            f"{record.employee_id} has not accepted the {name} invitation yet; the invitation must be accepted "
            "first, endorsement follows consent"
        )
    if not rules.badges[badge_id].invitation and not record.shown(rules, badge_id):
        raise FailedPrecondition(
            f"{record.employee_id} keeps the {name} badge private; it must be shown by its holder first"
        )
    if holding.endorsed_by:
        if holding.endorsed_by == admin and holding.endorsement_note == note:
            return None
        raise FailedPrecondition(f"this {name} badge was already endorsed by {holding.endorsed_by}")
    return replace(holding, endorsed_by=admin, endorsement_note=note)


def respond(rules: Rules, record: EmployeeRecord, badge_id: str, accept: bool, reason: str) -> Holding | None:
    """The holding with its new status and the reason for a decline, or None when the answer equals the current
    status (a retry)."""
    known_badge(rules, badge_id)
    badge = rules.badges[badge_id]
    if not badge.invitation:
        raise FailedPrecondition(f"{badge.name} is not an invitation; only invitation badges are accepted or declined")
    holding = record.top_holding(rules, badge_id)
    if holding is None:
        raise NotFound(f"you hold no {badge.name} invitation")
    status = ACCEPTED if accept else DECLINED
    if holding.status == status:
        return None
    words = "" if accept else reason
    return replace(holding, status=status, response_seq=holding.response_seq + 1, response_reason=words)
