"""Recognition events as Envelopes with deterministic ids (pure).

An id is derived from what the event is about (employee, badge, tier, kind, grant number, answer number),
never from time or randomness: a replay computes the same id, and the store refuses it a second time.
Events say who holds what, never why: evidence, reasons and notes stay in the store, which an erasure empties
(docs/decisions/0014-badge-events-without-evidence.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from catalyst.events.v1 import badges_pb2, envelope_pb2, programme_pb2

from services.recognition.rules import EvidenceItem, Holding, Tier

PRODUCER = "recognition"
_NAMESPACE = uuid.UUID("5b0e4c1e-0c55-4f0b-9d36-7a7c3a1f2b60")

TIER_PB = {
    Tier.BRONZE: badges_pb2.TIER_BRONZE,
    Tier.SILVER: badges_pb2.TIER_SILVER,
    Tier.GOLD: badges_pb2.TIER_GOLD,
    Tier.SINGLE: badges_pb2.TIER_SINGLE,
}


def event_id(employee_id: str, holding: Holding, kind: str, *extra: int) -> str:
    parts = [employee_id, holding.badge, holding.tier.value, kind, str(holding.grant_seq), *map(str, extra)]
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def evidence_pb(items: Iterable[EvidenceItem]) -> list[badges_pb2.Evidence]:
    return [
        badges_pb2.Evidence(
            signal=e.metric, value=e.value, threshold=e.threshold, description=e.description, window=e.window
        )
        for e in items
    ]


def _envelope(event_id_: str, at: datetime, employee_id: str, department_id: str) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope(
        event_id=event_id_, producer=PRODUCER, employee_id=employee_id, department_id=department_id
    )
    env.occurred_at.FromDatetime(at)
    return env


def granted(employee_id: str, department_id: str, holding: Holding, invitation: bool) -> envelope_pb2.Envelope:
    assert holding.granted_at is not None
    env = _envelope(event_id(employee_id, holding, "granted"), holding.granted_at, employee_id, department_id)
    env.type = "catalyst.events.v1.BadgeGranted"
    env.badge_granted.badge = holding.badge
    env.badge_granted.tier = TIER_PB[holding.tier]
    env.badge_granted.evaluated_at.FromDatetime(holding.granted_at)
    env.badge_granted.invitation = invitation
    return env


def revoked(employee_id: str, department_id: str, holding: Holding) -> envelope_pb2.Envelope:
    assert holding.revoked_at is not None
    env = _envelope(event_id(employee_id, holding, "revoked"), holding.revoked_at, employee_id, department_id)
    env.type = "catalyst.events.v1.BadgeRevoked"
    env.badge_revoked.badge = holding.badge
    env.badge_revoked.tier = TIER_PB[holding.tier]
    return env


def endorsed(employee_id: str, department_id: str, holding: Holding, at: datetime) -> envelope_pb2.Envelope:
    env = _envelope(event_id(employee_id, holding, "endorsed"), at, employee_id, department_id)
    env.type = "catalyst.events.v1.BadgeEndorsed"
    env.badge_endorsed.badge = holding.badge
    env.badge_endorsed.endorsed_by = holding.endorsed_by
    return env


def answered(
    employee_id: str, department_id: str, holding: Holding, accept: bool, at: datetime
) -> envelope_pb2.Envelope:
    env = _envelope(event_id(employee_id, holding, "answer", holding.response_seq), at, employee_id, department_id)
    if accept:
        env.type = "catalyst.events.v1.InvitationAccepted"
        env.invitation_accepted.badge = holding.badge
    else:
        env.type = "catalyst.events.v1.InvitationDeclined"
        env.invitation_declined.badge = holding.badge
    return env


def programme_event_id(employee_id: str, seq: int) -> str:
    """The id of a person's `seq`-th programme event (numbered in their programme record)."""
    return str(uuid.uuid5(_NAMESPACE, f"{employee_id}/programme/{seq}"))


def volunteered(employee_id: str, department_id: str, seq: int, at: datetime, withdraw: bool) -> envelope_pb2.Envelope:
    env = _envelope(programme_event_id(employee_id, seq), at, employee_id, department_id)
    if withdraw:
        env.type = "catalyst.events.v1.VolunteeringWithdrawn"
        env.volunteering_withdrawn.SetInParent()
    else:
        env.type = "catalyst.events.v1.Volunteered"
        env.volunteered.SetInParent()
    return env


LEGITIMATION_PB = {
    "offer_training": programme_pb2.LEGITIMATION_KIND_TRAINING_OFFERED,
    "complete_training": programme_pb2.LEGITIMATION_KIND_TRAINING_COMPLETED,
    "time_budget": programme_pb2.LEGITIMATION_KIND_TIME_BUDGET_AGREED,
    "grant_resource": programme_pb2.LEGITIMATION_KIND_RESOURCE_GRANTED,
    "appreciation": programme_pb2.LEGITIMATION_KIND_APPRECIATION_GIVEN,
}


def legitimation_recorded(
    employee_id: str, department_id: str, seq: int, at: datetime, change: str, item_id: str
) -> envelope_pb2.Envelope:
    """`item_id`: the catalogue id of a training or resource; never the appreciation's words or the budget."""
    env = _envelope(programme_event_id(employee_id, seq), at, employee_id, department_id)
    env.type = "catalyst.events.v1.LegitimationRecorded"
    env.legitimation_recorded.kind = LEGITIMATION_PB[change]
    env.legitimation_recorded.item_id = item_id
    return env
