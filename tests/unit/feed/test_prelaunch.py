"""Pre-launch sessions: registration checks, who confirms, event time, and what a person may record."""

from __future__ import annotations

import pytest
from catalyst.events.v1 import interactions_pb2 as ev

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.feed import prelaunch
from services.feed.domain import Employee, Limits
from services.feed.prelaunch import Session, SessionType

LIMITS = Limits()
HOUR = 3_600_000


def session(type_: SessionType = SessionType.WORKSHOP, pre_launch: bool = True, departments: tuple = ()) -> Session:
    return prelaunch.check_registration(
        LIMITS, "po-1", "w-1", type_, "Name the intranet", 10 * HOUR, 12 * HOUR, departments, "org", pre_launch
    )


def who(subject: str, *roles: Role) -> Principal:
    return Principal(subject, frozenset(roles or (Role.EMPLOYEE,)))


def test_a_registration_is_checked_field_by_field_and_round_trips() -> None:
    s = session(departments=("sales", "it", "sales"))
    assert s.department_ids == ("it", "sales") and s.organiser_id == "org"
    assert prelaunch.decode(prelaunch.encode(s)) == s
    defaults = prelaunch.check_registration(LIMITS, "po-1", "s", 3, "Survey", HOUR, 0, (), "", False)
    assert (defaults.ends_ms, defaults.organiser_id) == (HOUR, "po-1")
    for args, field in (
        (("", 1, "t", HOUR, HOUR), "session.session_id"),
        (("x", 9, "t", HOUR, HOUR), "session.type"),
        (("x", 1, " ", HOUR, HOUR), "session.title"),
        (("x", 1, "t", 0, HOUR), "session.starts_at"),
        (("x", 1, "t", 2 * HOUR, HOUR), "session.ends_at"),
    ):
        with pytest.raises(InvalidArgument, match=field):
            prelaunch.check_registration(LIMITS, "po-1", *args, (), "", True)


def test_the_organiser_the_programme_owner_or_for_surveys_the_tool_confirms() -> None:
    prelaunch.may_confirm(who("org"), session())
    prelaunch.may_confirm(who("po-2", Role.PROGRAMME_OWNER), session())
    prelaunch.may_confirm(who("tool", Role.SERVICE), session(SessionType.SURVEY))
    for principal in (who("someone"), who("tool", Role.SERVICE)):
        with pytest.raises(PermissionDenied, match="confirmed by its organiser"):
            prelaunch.may_confirm(principal, session())


def test_attendance_is_dated_by_the_session_and_bounded_by_its_departments() -> None:
    alice = Employee("alice", "Alice", "sales")
    assert prelaunch.check_attendee(who("org"), session(), alice, 20 * HOUR) == 12 * HOUR
    assert prelaunch.check_attendee(who("org"), session(), alice, 11 * HOUR) == 11 * HOUR
    with pytest.raises(FailedPrecondition, match="has not started"):
        prelaunch.check_attendee(who("org"), session(), alice, 9 * HOUR)
    with pytest.raises(FailedPrecondition, match="employee_id: alice is in department sales"):
        prelaunch.check_attendee(who("org"), session(departments=("it",)), alice, 20 * HOUR)
    with pytest.raises(PermissionDenied, match="not declared by the attendee"):
        prelaunch.check_attendee(who("alice"), session(), alice, 20 * HOUR)


def test_the_event_follows_the_registration_not_the_request() -> None:
    workshop = prelaunch.attendance_payload(session(), True, 0, LIMITS)
    assert isinstance(workshop, ev.WorkshopAttended) and workshop.pre_launch and workshop.contributed
    survey = prelaunch.attendance_payload(session(SessionType.SURVEY), False, 7, LIMITS)
    assert isinstance(survey, ev.SurveyAnswered) and survey.answered_questions == 7 and survey.pre_launch
    with pytest.raises(InvalidArgument, match="contributed"):
        prelaunch.attendance_payload(session(SessionType.SURVEY), True, 0, LIMITS)
    with pytest.raises(InvalidArgument, match="answered_questions"):
        prelaunch.attendance_payload(session(), False, 3, LIMITS)


def test_a_person_records_only_registered_sessions_after_launch() -> None:
    with pytest.raises(InvalidArgument, match="session_id: 'w-9' is not a registered session"):
        prelaunch.self_recorded("session_id", None, "w-9", survey=False, kind=ev.SESSION_KIND_WORKSHOP)
    with pytest.raises(InvalidArgument, match="survey_id"):
        prelaunch.self_recorded("survey_id", session(), "w-1", survey=True)
    with pytest.raises(InvalidArgument, match="kind: w-1 is registered as a workshop"):
        prelaunch.self_recorded("session_id", session(), "w-1", survey=False, kind=ev.SESSION_KIND_INTERVIEW)
    with pytest.raises(FailedPrecondition, match="confirmed by the organiser"):
        prelaunch.self_recorded("session_id", session(), "w-1", survey=False, kind=ev.SESSION_KIND_WORKSHOP)
    after = session(pre_launch=False)
    assert prelaunch.self_recorded("session_id", after, "w-1", survey=False, kind=ev.SESSION_KIND_WORKSHOP) == after
