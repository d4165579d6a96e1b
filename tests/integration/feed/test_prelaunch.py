"""Confirmed pre-launch signals over a real socket, Redis and Kafka: registered sessions, attendance confirmed by
the organiser or the survey tool, never self-declared; unknown sessions refused with the field named."""

from __future__ import annotations

import grpc
import pytest
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2 as pb
from catalyst.feed.v1 import prelaunch_pb2 as pre

from services.common.auth import Role
from tests.integration.feed.harness import Feed, read_topic

pytestmark = pytest.mark.integration

ALICE, BOB, ORGANISER = "e-alice", "e-bob", "e-org"


async def expect(code: grpc.StatusCode, call: object, *needles: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    for needle in needles:
        assert needle in info.value.details(), info.value.details()


def workshop(session_id: str, **fields: object) -> pre.RegisterSessionRequest:
    session = pre.Session(session_id=session_id, type=pre.SESSION_TYPE_WORKSHOP, title="Name the intranet", **fields)
    session.starts_at.FromSeconds(1_700_000_000)
    session.ends_at.FromSeconds(1_700_007_200)
    return pre.RegisterSessionRequest(session=session)


async def test_the_programme_owner_registers_and_the_organiser_confirms(
    feed: Feed, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    f = feed
    await f.directory((ALICE, "Alice", "sales"), (BOB, "Bob", "it"), (ORGANISER, "Org", "comms"))
    registered = await f.prelaunch(
        "RegisterSession", workshop("w-1", department_ids=["sales"], organiser_id=ORGANISER, pre_launch=True)
    )
    assert registered.session.registered_by == "po-1" and list(registered.session.department_ids) == ["sales"]
    await f.session("s-1", pre.SESSION_TYPE_SURVEY)
    listed = await f.prelaunch("ListSessions", pre.ListSessionsRequest())
    assert [s.session_id for s in listed.sessions] == ["w-1", "s-1"]

    confirm = pre.ConfirmAttendanceRequest
    assert (
        await f.prelaunch(
            "ConfirmAttendance",
            confirm(session_id="w-1", employee_id=ALICE, contributed=True),
            ORGANISER,
            Role.EMPLOYEE,
        )
    ).recorded
    assert not (
        await f.prelaunch("ConfirmAttendance", confirm(session_id="w-1", employee_id=ALICE), ORGANISER, Role.EMPLOYEE)
    ).recorded
    survey_tool = await f.prelaunch(
        "ConfirmAttendance",
        confirm(session_id="s-1", employee_id=BOB, answered_questions=12),
        "survey-tool",
        Role.SERVICE,
    )
    assert survey_tool.recorded

    records = await read_topic(kafka_bootstrap, topics["interactions"], expected=5)
    attended = [r.envelope for r in records if r.envelope.WhichOneof("payload") == "workshop_attended"]
    (env,) = attended
    assert env.employee_id == ALICE and env.department_id == "sales"
    assert env.occurred_at.seconds == 1_700_007_200  # the session's end: event time, not the confirmation's
    w = env.workshop_attended
    assert (w.session_id, w.kind, w.pre_launch, w.contributed) == ("w-1", ev.SESSION_KIND_WORKSHOP, True, True)
    (survey,) = [r.envelope for r in records if r.envelope.WhichOneof("payload") == "survey_answered"]
    assert (survey.employee_id, survey.survey_answered.pre_launch, survey.survey_answered.answered_questions) == (
        BOB,
        True,
        12,
    )


async def test_nothing_pre_launch_is_self_declared_and_unknown_sessions_are_refused(feed: Feed) -> None:
    f = feed
    await f.directory((ALICE, "Alice", "sales"), (BOB, "Bob", "it"), (ORGANISER, "Org", "comms"))
    await f.prelaunch(
        "RegisterSession", workshop("w-1", department_ids=["sales"], organiser_id=ORGANISER, pre_launch=True)
    )
    await f.session("s-1", pre.SESSION_TYPE_SURVEY)
    confirm = pre.ConfirmAttendanceRequest

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("RecordWorkshopAttendance", pb.RecordWorkshopAttendanceRequest(session_id="w-9", kind=1), ALICE),
        "session_id",
        "'w-9' is not a registered session",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("RecordSurveyResponse", pb.RecordSurveyResponseRequest(survey_id="w-1"), ALICE),
        "survey_id",
        "not a registered session",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.prelaunch("ConfirmAttendance", confirm(session_id="w-9", employee_id=ALICE)),
        "session_id",
        "not a registered session",
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        f.call("RecordWorkshopAttendance", pb.RecordWorkshopAttendanceRequest(session_id="w-1", kind=1), ALICE),
        "confirmed by the organiser",
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        f.call("RecordSurveyResponse", pb.RecordSurveyResponseRequest(survey_id="s-1"), ALICE),
        "confirmed by the organiser",
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        f.prelaunch("ConfirmAttendance", confirm(session_id="w-1", employee_id=ALICE), BOB, Role.EMPLOYEE),
        "confirmed by its organiser (e-org)",
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        f.prelaunch("ConfirmAttendance", confirm(session_id="w-1", employee_id=ALICE), "tool", Role.SERVICE),
        "confirmed by its organiser",
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        f.prelaunch("ConfirmAttendance", confirm(session_id="w-1", employee_id=ORGANISER), ORGANISER, Role.EMPLOYEE),
        "not declared by the attendee",
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        f.prelaunch("ConfirmAttendance", confirm(session_id="w-1", employee_id=BOB), ORGANISER, Role.EMPLOYEE),
        "employee_id: e-bob is in department it; session w-1 is for sales",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        f.prelaunch("ConfirmAttendance", confirm(session_id="w-1", employee_id="e-nobody")),
        "employee_id",
        "not in the directory",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.prelaunch("ConfirmAttendance", confirm(session_id="s-1", employee_id=ALICE, contributed=True)),
        "contributed",
    )

    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        f.prelaunch("RegisterSession", workshop("w-2"), ALICE, Role.EMPLOYEE),
        "programme_owner",
    )
    for request, field in (
        (pre.RegisterSessionRequest(), "session"),
        (workshop(""), "session.session_id"),
        (pre.RegisterSessionRequest(session=pre.Session(session_id="x", title="t")), "session.type"),
        (pre.RegisterSessionRequest(session=pre.Session(session_id="x", type=1, title="t")), "session.starts_at"),
        (workshop("w-3", department_ids=["bad id"]), "session.department_ids[0]"),
    ):
        await expect(grpc.StatusCode.INVALID_ARGUMENT, f.prelaunch("RegisterSession", request), field)
