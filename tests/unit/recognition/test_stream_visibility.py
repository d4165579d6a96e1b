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


def test_visible_public_events_reach_everyone_in_the_department() -> None:
    assert may_see(sub(), event("badge_granted"), visible=True)
    assert may_see(sub(department="d1"), event("invitation_accepted"), visible=True)
    assert not may_see(sub(department="d2"), event("badge_granted"), visible=True)


def test_hidden_people_appear_only_in_their_own_stream() -> None:
    assert not may_see(sub(), event("badge_granted"), visible=False)
    assert not may_see(sub(programme_owner=True), event("badge_granted"), visible=False)
    assert may_see(sub("e1"), event("badge_granted"), visible=False)


def test_open_and_declined_invitations_are_private_to_the_person_and_programme_owner() -> None:
    for env in (event("badge_granted", invitation=True), event("invitation_declined")):
        assert not may_see(sub(), env, visible=True)
        assert may_see(sub(programme_owner=True), env, visible=True)
        assert may_see(sub("e1"), env, visible=True)
