"""The audit of look-ups against the real recognition process: a purpose is required, every look-up of another
person's data reaches catalyst.audit.v1 and the audit store within seconds, the person sees who looked, the
works council reads the log and its aggregates, and nobody else does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from catalyst.audit.v1 import audit_pb2, audit_pb2_grpc
from catalyst.events.v1 import envelope_pb2
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.common.audit import PURPOSE_KEY, access_record
from services.common.auth import Principal, Role
from services.recognition.audit_store import AuditStore, about_key
from tests.integration.recognition.harness import Harness, eventually, read_topic, score_changed

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
GET_BADGES = "catalyst.recognition.v1.RecognitionService/GetBadges"


async def status_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details()


def audit_stub(rec: Harness) -> audit_pb2_grpc.AuditServiceStub:
    return audit_pb2_grpc.AuditServiceStub(rec.channel)


async def test_a_look_up_without_a_purpose_is_refused_and_names_the_metadata_key(rec: Harness) -> None:
    await rec.scores_applied(score_changed("amy", 1, T0, {"posts_30d": 3}))
    bare = rec.token("po-1", Role.PROGRAMME_OWNER, purpose="")
    for call in (
        rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="amy"), metadata=bare),
        rec.stub.ListAmbassadors(pb.ListAmbassadorsRequest(), metadata=bare),
        rec.stub.ProposePilotGroup(pb.ProposePilotGroupRequest(size=3), metadata=bare),
    ):
        code, details = await status_of(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(PURPOSE_KEY), details
    own = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("amy", purpose=""))
    assert own is not None  # one's own data needs no purpose and leaves no audit entry
    assert not (
        await audit_stub(rec).ListMyAccesses(audit_pb2.ListMyAccessesRequest(), metadata=rec.token("amy"))
    ).accesses


async def test_a_look_up_shows_up_in_the_audit_for_the_person_and_the_works_council(rec: Harness) -> None:
    await rec.scores_applied(score_changed("amy", 1, T0, {"posts_30d": 3}))
    purpose = "checking nominations for the spring cohort"
    await rec.stub.GetBadges(
        pb.GetBadgesRequest(employee_id="amy"), metadata=rec.token("po-1", Role.PROGRAMME_OWNER, purpose=purpose)
    )
    mine = await eventually(
        lambda: audit_stub(rec).ListMyAccesses(audit_pb2.ListMyAccessesRequest(), metadata=rec.token("amy")),
        lambda r: len(r.accesses) == 1,
        timeout=10,
    )
    (entry,) = mine.accesses
    assert entry.employee_id == "amy" and entry.producer == "recognition"
    assert (entry.data_accessed.actor, list(entry.data_accessed.actor_roles)) == ("po-1", ["programme_owner"])
    assert (entry.data_accessed.method, entry.data_accessed.purpose) == (GET_BADGES, purpose)
    assert abs(entry.occurred_at.ToDatetime(UTC) - datetime.now(UTC)) < timedelta(minutes=1)

    (key, value), *_ = [r for r in read_topic(rec.bootstrap, rec.app.settings.topic_audit) if r[1]]
    assert key == b"amy" and envelope_pb2.Envelope.FromString(value) == entry

    council = rec.token("wc-1", Role.WORKS_COUNCIL)
    log = await audit_stub(rec).ListAccesses(audit_pb2.ListAccessesRequest(), metadata=council)
    by_actor = await audit_stub(rec).ListAccesses(audit_pb2.ListAccessesRequest(actor="po-1"), metadata=council)
    about = await audit_stub(rec).ListAccesses(audit_pb2.ListAccessesRequest(employee_id="amy"), metadata=council)
    assert list(log.accesses) == list(by_actor.accesses) == list(about.accesses) == [entry]
    summary = await audit_stub(rec).SummariseAccesses(audit_pb2.SummariseAccessesRequest(), metadata=council)
    assert summary.total_accesses == 1
    assert [(c.actor_role, c.method, c.purpose, c.accesses, c.people) for c in summary.counts] == [
        ("programme_owner", GET_BADGES, purpose, 1, 1)
    ]


async def test_only_the_works_council_reads_the_log(rec: Harness) -> None:
    for role in (Role.EMPLOYEE, Role.PROGRAMME_OWNER, Role.HR, Role.OPERATOR):
        for call in (
            audit_stub(rec).ListAccesses(audit_pb2.ListAccessesRequest(), metadata=rec.token("x", role)),
            audit_stub(rec).SummariseAccesses(audit_pb2.SummariseAccessesRequest(), metadata=rec.token("x", role)),
        ):
            code, details = await status_of(call)
            assert code == grpc.StatusCode.PERMISSION_DENIED and "works_council role" in details, details


async def test_a_candidate_list_is_audited_for_every_person_on_it(rec: Harness) -> None:
    for i, person in enumerate(("cid", "cal", "cora")):
        await rec.scores_applied(score_changed(person, 1, T0, {"pilot_activities": 9}, f"d{i}"))
    group = await rec.stub.ProposePilotGroup(
        pb.ProposePilotGroupRequest(size=3), metadata=rec.token("po-1", Role.PROGRAMME_OWNER)
    )
    named = {c.employee_id for c in group.candidates}
    council = rec.token("wc-1", Role.WORKS_COUNCIL)
    log = await eventually(
        lambda: audit_stub(rec).ListAccesses(audit_pb2.ListAccessesRequest(actor="po-1"), metadata=council),
        lambda r: len(r.accesses) == len(named),
        timeout=10,
    )
    assert named and {e.employee_id for e in log.accesses} == named


async def test_entries_leave_the_store_only_when_their_retention_ends(rec: Harness) -> None:
    store = AuditStore(rec.store.redis, timedelta(days=1))
    now = int(datetime.now(UTC).timestamp() * 1000)
    caller = Principal("po-1", frozenset({Role.PROGRAMME_OWNER}))
    fresh = access_record(caller, "ann", GET_BADGES, "why", "test", now - 1000, "fresh")
    stale = access_record(caller, "ann", GET_BADGES, "why", "test", now - 2 * 86_400_000, "stale")
    await store.append([fresh, stale, fresh], now)  # a replayed entry is stored once, an expired one not at all
    assert (await store.about("ann", 0, 10, now)) == ([fresh], False)
    assert 0 < await rec.store.redis.pttl(about_key("ann")) <= 86_400_000
    assert await store.expire(now + 86_400_000) == 1
    assert (await store.log(0, 10, now + 86_400_000)) == ([], False)
