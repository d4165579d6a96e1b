"""Endorsement and invitation rules about people, and deterministic event ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from catalyst.events.v1 import programme_pb2

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.recognition import events, model
from services.recognition.config import DEFAULT_RULES
from services.recognition.model import EmployeeRecord
from services.recognition.programme import Programme
from services.recognition.rules import EvidenceItem, Holding, Rules, Tier, load_rules

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
AMB = "intranet_ambassador"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(DEFAULT_RULES)


def holder(status: str = model.ACCEPTED, **changes: object) -> EmployeeRecord:
    holding = Holding(AMB, Tier.SINGLE, held=True, grant_seq=1, granted_at=T0, status=status)
    return EmployeeRecord("e1", rev=3, department="d1", holdings={(AMB, Tier.SINGLE): holding}, **changes)


def test_admin_endorses_a_holder_with_a_note(rules: Rules) -> None:
    endorsed = model.endorse(rules, holder(), AMB, "hr-1", "welcome to the programme")
    assert endorsed is not None
    assert endorsed.endorsed_by == "hr-1" and endorsed.endorsement_note == "welcome to the programme"


def test_nobody_is_endorsed_into_a_badge(rules: Rules) -> None:
    with pytest.raises(FailedPrecondition, match="cannot create one"):
        model.endorse(rules, EmployeeRecord("e1", rev=1), AMB, "hr-1", "")
    revoked = holder()
    revoked = replace(revoked, holdings={k: replace(h, held=False) for k, h in revoked.holdings.items()})
    with pytest.raises(FailedPrecondition, match="does not hold"):
        model.endorse(rules, revoked, AMB, "hr-1", "")


@pytest.mark.parametrize(
    ("record", "error", "text"),
    [
        (holder(opt_out=True), FailedPrecondition, "opted out"),
        (holder(hidden=True), FailedPrecondition, "opted out"),
        (holder(model.DECLINED), FailedPrecondition, "declined"),
    ],
)
def test_endorsement_respects_the_persons_choices(rules: Rules, record: EmployeeRecord, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        model.endorse(rules, record, AMB, "hr-1", "")


def test_endorsement_edge_cases(rules: Rules) -> None:
    with pytest.raises(PermissionDenied, match="yourself"):
        model.endorse(rules, holder(), AMB, "e1", "")
    with pytest.raises(InvalidArgument, match="unknown badge"):
        model.endorse(rules, holder(), "superstar", "hr-1", "")
    endorsed = model.endorse(rules, holder(), AMB, "hr-1", "note")
    again = replace(holder(), holdings={(AMB, Tier.SINGLE): endorsed})
    assert model.endorse(rules, again, AMB, "hr-1", "note") is None  # a retry changes nothing
    with pytest.raises(FailedPrecondition, match="already endorsed by hr-1"):
        model.endorse(rules, again, AMB, "hr-2", "other")


def test_consent_comes_before_endorsement(rules: Rules) -> None:
    with pytest.raises(FailedPrecondition, match="the invitation must be accepted first"):
        model.endorse(rules, holder(model.INVITED), AMB, "hr-1", "")
    holdings = {("creator", Tier.BRONZE): Holding("creator", Tier.BRONZE, held=True, grant_seq=1, granted_at=T0)}
    with pytest.raises(FailedPrecondition, match="must be shown by its holder first"):
        model.endorse(rules, EmployeeRecord("e1", rev=1, holdings=holdings), "creator", "hr-1", "")


def test_endorse_uses_the_highest_held_tier(rules: Rules) -> None:
    holdings = {
        ("creator", t): Holding("creator", t, held=True, grant_seq=1, granted_at=T0) for t in (Tier.BRONZE, Tier.SILVER)
    }
    shown = Programme(shown_badges=("creator",))
    record = EmployeeRecord("e1", rev=1, holdings=holdings, programme=shown)
    endorsed = model.endorse(rules, record, "creator", "hr-1", "")
    assert endorsed is not None and endorsed.tier is Tier.SILVER


def test_holder_accepts_declines_and_may_change_their_mind(rules: Rules) -> None:
    accepted = model.respond(rules, holder(model.INVITED), AMB, accept=True, reason="ignored when accepting")
    assert accepted is not None and accepted.status == model.ACCEPTED and accepted.response_seq == 1
    assert accepted.response_reason == ""
    record = replace(holder(model.INVITED), holdings={(AMB, Tier.SINGLE): accepted})
    assert model.respond(rules, record, AMB, accept=True, reason="") is None
    declined = model.respond(rules, record, AMB, accept=False, reason="no time")
    assert declined is not None and declined.status == model.DECLINED and declined.response_seq == 2
    assert declined.response_reason == "no time"


def test_only_invitation_badges_held_by_the_caller_are_answered(rules: Rules) -> None:
    with pytest.raises(FailedPrecondition, match="not an invitation"):
        model.respond(rules, holder(model.INVITED), "creator", accept=True, reason="")
    with pytest.raises(NotFound, match="no Intranet Ambassador invitation"):
        model.respond(rules, EmployeeRecord("e2"), AMB, accept=True, reason="")


def test_visibility_follows_both_preferences() -> None:
    assert EmployeeRecord("e").visible
    assert not EmployeeRecord("e", opt_out=True).visible
    assert not EmployeeRecord("e", hidden=True).visible


def test_badge_events_carry_no_evidence_reason_or_note() -> None:
    evidence = (EvidenceItem("posts_30d", 4, 3, "posts: 4 (threshold 3)", "30d"),)
    h = Holding("creator", Tier.BRONZE, held=True, grant_seq=1, granted_at=T0, evidence=evidence)
    gone = replace(h, held=False, revoked_at=T0, revoke_reason="below 2 posts", revoke_evidence=evidence)
    noted = replace(h, endorsed_by="po-1", endorsement_note="thank you", response_seq=1, response_reason="no time")
    for env in (
        events.granted("e1", "d1", h, invitation=False),
        events.revoked("e1", "d1", gone),
        events.endorsed("e1", "d1", noted, T0),
        events.answered("e1", "d1", noted, False, T0),
    ):
        text = str(env)
        assert "posts" not in text and "thank you" not in text and "no time" not in text, text


def test_event_ids_are_deterministic_and_distinct_per_fact() -> None:
    evidence = (EvidenceItem("posts_30d", 4, 3, "posts: 4 (threshold 3)", "30d"),)
    h = Holding("creator", Tier.BRONZE, held=True, grant_seq=1, granted_at=T0, evidence=evidence)
    first = events.granted("e1", "d1", h, invitation=False)
    assert first.SerializeToString(deterministic=True) == events.granted("e1", "d1", h, False).SerializeToString(
        deterministic=True
    )
    assert first.type == "catalyst.events.v1.BadgeGranted" and first.badge_granted.badge == "creator"
    regrant = events.granted("e1", "d1", replace(h, grant_seq=2), invitation=False)
    revoked = events.revoked("e1", "d1", replace(h, held=False, revoked_at=T0, revoke_reason="r"))
    other_tier = events.granted("e1", "d1", replace(h, tier=Tier.SILVER), invitation=False)
    other_person = events.granted("e2", "d1", h, invitation=False)
    ids = {e.event_id for e in (first, regrant, revoked, other_tier, other_person)}
    assert len(ids) == 5
    answer1 = events.answered("e1", "d1", replace(h, response_seq=1), True, T0)
    answer2 = events.answered("e1", "d1", replace(h, response_seq=2), False, T0)
    assert answer1.event_id != answer2.event_id and answer2.invitation_declined.badge == "creator"


def test_programme_events_have_numbered_ids_and_carry_no_words() -> None:
    first = events.volunteered("e1", "d1", 1, T0, withdraw=False)
    assert first.WhichOneof("payload") == "volunteered"
    assert events.volunteered("e1", "d1", 1, T0, withdraw=False).event_id == first.event_id
    assert events.volunteered("e1", "d1", 2, T0, withdraw=True).WhichOneof("payload") == "volunteering_withdrawn"
    assert events.programme_event_id("e1", 2) != first.event_id
    given = events.legitimation_recorded("e1", "d1", 3, T0, "grant_resource", "community_channel")
    assert given.legitimation_recorded.item_id == "community_channel"
    thanks = events.legitimation_recorded("e1", "d1", 4, T0, "appreciation", "")
    assert thanks.legitimation_recorded.kind == programme_pb2.LEGITIMATION_KIND_APPRECIATION_GIVEN
    assert not thanks.legitimation_recorded.item_id
