"""Pre-launch sessions (pure): what a registration must say, who may confirm attendance, and the event a
confirmation becomes.

Pilot signals weigh heavily in finding ambassadors before launch, so they are facts confirmed by someone
else: the programme owner registers a workshop, interview or survey; its organiser (or the programme owner)
confirms who attended and who contributed, and a survey's responses come from the survey tool itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum

from catalyst.events.v1 import interactions_pb2 as ev
from google.protobuf.message import Message

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.feed import domain
from services.feed.domain import Employee, Limits

MAX_TITLE_CHARS = 200
MAX_DEPARTMENTS = 200
MAX_DURATION_MS = 366 * 86_400_000


class SessionType(IntEnum):
    """Values of catalyst.feed.v1.SessionType."""

    WORKSHOP = 1
    INTERVIEW = 2
    SURVEY = 3


SESSION_KINDS = {SessionType.WORKSHOP: ev.SESSION_KIND_WORKSHOP, SessionType.INTERVIEW: ev.SESSION_KIND_INTERVIEW}


@dataclass(frozen=True)
class Session:
    session_id: str
    type: SessionType
    title: str
    starts_ms: int
    ends_ms: int
    department_ids: tuple[str, ...]
    organiser_id: str
    pre_launch: bool
    registered_by: str


def check_registration(
    limits: Limits,
    registered_by: str,
    session_id: str,
    type_: int,
    title: str,
    starts_ms: int,
    ends_ms: int,
    department_ids: Sequence[str],
    organiser_id: str,
    pre_launch: bool,
) -> Session:
    """A valid session, or INVALID_ARGUMENT naming the field (`session.<field>`)."""
    sid = domain.check_id("session.session_id", session_id, limits)
    if type_ not in {t.value for t in SessionType}:
        raise InvalidArgument("session.type", "choose SESSION_TYPE_WORKSHOP, _INTERVIEW or _SURVEY")
    text = domain.check_text("session.title", title, MAX_TITLE_CHARS, required=True)
    if not starts_ms:
        raise InvalidArgument("session.starts_at", "say when the session starts")
    ends_ms = ends_ms or starts_ms
    if ends_ms < starts_ms:
        raise InvalidArgument("session.ends_at", "must not be before starts_at")
    if ends_ms - starts_ms > MAX_DURATION_MS:
        raise InvalidArgument("session.ends_at", "a session lasts at most a year")
    if len(department_ids) > MAX_DEPARTMENTS:
        raise InvalidArgument("session.department_ids", f"at most {MAX_DEPARTMENTS}")
    departments = tuple(
        sorted({domain.check_id(f"session.department_ids[{i}]", d, limits) for i, d in enumerate(department_ids)})
    )
    organiser = domain.check_id("session.organiser_id", organiser_id or registered_by, limits)
    return Session(sid, SessionType(type_), text, starts_ms, ends_ms, departments, organiser, pre_launch, registered_by)


def unregistered(field: str, session_id: str) -> InvalidArgument:
    return InvalidArgument(
        field,
        f"'{session_id}' is not a registered session; the programme owner registers workshops, interviews and "
        "surveys first (PreLaunchService.RegisterSession)",
    )


def may_confirm(principal: Principal, session: Session) -> None:
    """The organiser or the programme owner confirms attendance; a survey's responses may also come from the
    survey tool (service role). Nobody confirms their own attendance."""
    if principal.has(Role.PROGRAMME_OWNER) or principal.subject == session.organiser_id:
        return
    if session.type is SessionType.SURVEY and principal.has(Role.SERVICE):
        return
    raise PermissionDenied(
        f"attendance of {session.session_id} is confirmed by its organiser ({session.organiser_id}), the "
        "programme owner" + (" or the survey tool (service role)" if session.type is SessionType.SURVEY else "")
    )


def check_attendee(principal: Principal, session: Session, attendee: Employee, now_ms: int) -> int:
    """The event time of the confirmed attendance: the session's end, or now while it is still running."""
    if attendee.employee_id == principal.subject:
        raise PermissionDenied("attendance is confirmed by someone else, not declared by the attendee")
    if session.department_ids and attendee.department_id not in session.department_ids:
        raise FailedPrecondition(
            f"employee_id: {attendee.employee_id} is in department {attendee.department_id}; session "
            f"{session.session_id} is for {', '.join(session.department_ids)}"
        )
    if now_ms < session.starts_ms:
        raise FailedPrecondition(f"session {session.session_id} has not started yet")
    return min(now_ms, session.ends_ms)


def attendance_payload(session: Session, contributed: bool, answered_questions: int, limits: Limits) -> Message:
    if session.type is SessionType.SURVEY:
        if contributed:
            raise InvalidArgument("contributed", "surveys record answered_questions, not contributions")
        domain.check_answered_questions(answered_questions, limits, "answered_questions")
        return ev.SurveyAnswered(
            survey_id=session.session_id, pre_launch=session.pre_launch, answered_questions=answered_questions
        )
    if answered_questions:
        raise InvalidArgument("answered_questions", "only surveys record answered questions")
    return ev.WorkshopAttended(
        session_id=session.session_id,
        kind=SESSION_KINDS[session.type],
        pre_launch=session.pre_launch,
        contributed=contributed,
    )


def self_recorded(field: str, session: Session | None, session_id: str, survey: bool, kind: int = 0) -> Session:
    """The registered post-launch session a person may record themselves, or why not."""
    if session is None or (session.type is SessionType.SURVEY) != survey:
        raise unregistered(field, session_id)
    if not survey and SESSION_KINDS[session.type] != kind:
        raise InvalidArgument("kind", f"{session_id} is registered as a {session.type.name.lower()}")
    if session.pre_launch:
        raise FailedPrecondition(
            f"{session_id} ran before launch: its attendance is confirmed by the organiser "
            "(PreLaunchService.ConfirmAttendance), not self-declared"
        )
    return session


def encode(session: Session) -> str:
    return json.dumps(asdict(session), sort_keys=True)


def decode(raw: str | bytes) -> Session:
    data = json.loads(raw)
    data["type"] = SessionType(data["type"])
    data["department_ids"] = tuple(data["department_ids"])
    return Session(**data)
