"""Who sees which badge event on StreamBadgeEvents."""

from __future__ import annotations

import asyncio

from catalyst.events.v1 import envelope_pb2

from services.recognition.stream import Subscriber, may_see


def event(kind: str, employee: str = "e1", department: str = "d1", invitation: bool = False) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope(employee_id=employee, department_id=department)
    getattr(env, kind).badge = "intranet_ambassador"
    if kind == "badge_granted":
        env.badge_granted.invitation = invitation
    return env


def sub(viewer: str = "v", programme_owner: bool = False, department: str = "") -> Subscriber:
    return Subscriber(viewer, programme_owner, department, asyncio.Queue())


SHOWN = frozenset({"intranet_ambassador"})
PRIVATE: frozenset[str] = frozenset()


def test_shown_badges_reach_everyone_in_the_department() -> None:
    assert may_see(sub(), event("badge_granted"), visible=True, public=SHOWN)
    assert may_see(sub(department="d1"), event("invitation_accepted"), visible=True, public=SHOWN)
    assert not may_see(sub(department="d2"), event("badge_granted"), visible=True, public=SHOWN)


def test_a_badge_the_holder_has_not_shown_reaches_only_them_and_the_programme_owner() -> None:
    for kind in ("badge_granted", "badge_revoked", "badge_endorsed"):
        assert not may_see(sub(), event(kind), visible=True, public=PRIVATE)
        assert may_see(sub(programme_owner=True), event(kind), visible=True, public=PRIVATE)
        assert may_see(sub("e1"), event(kind), visible=True, public=PRIVATE)


def test_hidden_people_appear_only_in_their_own_stream() -> None:
    assert not may_see(sub(), event("badge_granted"), visible=False, public=SHOWN)
    assert not may_see(sub(programme_owner=True), event("badge_granted"), visible=False, public=SHOWN)
    assert may_see(sub("e1"), event("badge_granted"), visible=False, public=SHOWN)


def test_open_and_declined_invitations_are_private_to_the_person_and_programme_owner() -> None:
    for env in (event("badge_granted", invitation=True), event("invitation_declined")):
        assert not may_see(sub(), env, visible=True, public=SHOWN)
        assert may_see(sub(programme_owner=True), env, visible=True, public=SHOWN)
        assert may_see(sub("e1"), env, visible=True, public=SHOWN)


def test_programme_events_reach_only_the_person_and_the_programme_owner() -> None:
    for kind in ("volunteered", "volunteering_withdrawn", "legitimation_recorded"):
        env = envelope_pb2.Envelope(employee_id="e1", department_id="d1")
        getattr(env, kind).SetInParent()
        assert not may_see(sub(), env, visible=True, public=SHOWN)
        assert may_see(sub("e1"), env, visible=True, public=SHOWN)
        assert may_see(sub(programme_owner=True), env, visible=True, public=SHOWN)
