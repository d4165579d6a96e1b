"""The emerging list against the real service: the programme owner's alone, with a purpose, every listed person
audited, and nobody told or badged by being on it."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from catalyst.audit.v1 import audit_pb2, audit_pb2_grpc
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.common.auth import Role
from services.recognition.emerging import outlook
from services.recognition.rules import Tier, load_rules
from services.recognition.server import LIST_EMERGING
from tests.integration.recognition.harness import MECHANICS_RULES, Harness, eventually, score_changed

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = load_rules(MECHANICS_RULES)
AMB = "intranet_ambassador"
CRITERIA = RULES.badges[AMB].tiers[Tier.SINGLE].criteria
AT_GRANT = {c.metric: c.grant for c in CRITERIA}
# In the band a holder keeps the badge in, the profile complete enough: on track, with a date.
ON_TRACK = {c.metric: c.grant if c.format == "percent" else c.keep for c in CRITERIA}
BELOW = {c.metric: 0.0 for c in CRITERIA}


async def test_only_the_programme_owner_sees_who_is_on_track_and_each_look_is_audited(rec: Harness) -> None:
    for n, (employee, figures) in enumerate(
        {"ana": ON_TRACK, "ben": AT_GRANT, "cy": ON_TRACK, "dee": BELOW}.items(), start=1
    ):
        await rec.register(employee, "d1", employee.title(), T0)
        if employee == "cy":  # opted out of recognition: never listed
            opt_out = pb.SetPreferencesRequest(preferences=pb.Preferences(recognition_opt_out=True))
            await rec.stub.SetPreferences(opt_out, metadata=rec.token("cy"))
        await rec.scores_applied(score_changed(employee, n, T0, figures))

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await rec.stub.ListEmerging(pb.ListEmergingRequest(), metadata=rec.token("ben"))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as unstated:
        await rec.stub.ListEmerging(
            pb.ListEmergingRequest(), metadata=rec.token("comms", Role.PROGRAMME_OWNER, purpose="")
        )
    assert unstated.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "purpose" in unstated.value.details()

    purpose = "planning who to talk to next month"
    owner = rec.token("comms", Role.PROGRAMME_OWNER, purpose=purpose)
    listed = await eventually(
        lambda: rec.stub.ListEmerging(pb.ListEmergingRequest(), metadata=owner), lambda r: len(r.emerging) == 1
    )
    (ana,) = listed.emerging
    expected = outlook(RULES, ON_TRACK, None, T0, None)
    assert (ana.employee_id, ana.display_name, ana.department_id) == ("ana", "Ana", "d1")
    assert ana.expected_at.ToDatetime(UTC) == expected.expected_at and ana.expected == expected.expected
    assert not ana.HasField("qualifying_since")
    assert len(ana.progress.met) + len(ana.progress.missing) == len(CRITERIA) and ana.progress.missing
    assert not (await rec.stub.ListEmerging(pb.ListEmergingRequest(department_id="d2"), metadata=owner)).emerging

    accesses = await eventually(
        lambda: audit_pb2_grpc.AuditServiceStub(rec.channel).ListMyAccesses(
            audit_pb2.ListMyAccessesRequest(), metadata=rec.token("ana")
        ),
        lambda r: len(r.accesses) >= 1,
        timeout=10,
    )
    assert {(a.data_accessed.method, a.data_accessed.purpose) for a in accesses.accesses} == {(LIST_EMERGING, purpose)}
    # Being on the list grants nothing and sends nothing: only ben was invited.
    own = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("ana"))
    assert AMB not in {b.badge for b in own.badges}
    await rec.settled()
    invited = [
        e.employee_id
        for e in await rec.recognition_events()
        if e is not None and e.WhichOneof("payload") == "badge_granted" and e.badge_granted.badge == AMB
    ]
    assert invited == ["ben"]
