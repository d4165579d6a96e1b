"""Decoding and validating interaction records: anything the processor cannot score safely is poison."""

from __future__ import annotations

import re

from catalyst.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError, Message

PREFIX = "catalyst.events.v1."
# Envelope.type -> the oneof field that must carry the payload. Only these are accepted on the interactions topic.
PAYLOAD_FIELD = {
    f"{PREFIX}PostCreated": "post_created",
    f"{PREFIX}PostEdited": "post_edited",
    f"{PREFIX}PostDeleted": "post_deleted",
    f"{PREFIX}CommentAdded": "comment_added",
    f"{PREFIX}ReactionAdded": "reaction_added",
    f"{PREFIX}ReactionRemoved": "reaction_removed",
    f"{PREFIX}QuestionAsked": "question_asked",
    f"{PREFIX}AnswerPosted": "answer_posted",
    f"{PREFIX}AnswerAccepted": "answer_accepted",
    f"{PREFIX}ProfileUpdated": "profile_updated",
    f"{PREFIX}FeatureTried": "feature_tried",
    f"{PREFIX}FeedbackSubmitted": "feedback_submitted",
    f"{PREFIX}SurveyAnswered": "survey_answered",
    f"{PREFIX}WorkshopAttended": "workshop_attended",
    f"{PREFIX}EmployeeForgotten": "employee_forgotten",
    f"{PREFIX}EmployeeRegistered": "employee_registered",
}
# Fields that must be non-empty for an event to be scored (ids of the other party).
REQUIRED = {
    "comment_added": ("post_author_id",),
    "reaction_added": ("post_author_id",),
    "answer_posted": ("question_author_id",),
    "answer_accepted": ("answer_author_id",),
    "feature_tried": ("feature_id",),
    "survey_answered": ("survey_id",),
    "workshop_attended": ("session_id",),
}
MAX_ID = 128


_CONTROL = re.compile(r"[\x00-\x1f]")
_has_control = _CONTROL.search
_parse = envelope_pb2.Envelope.FromString


class Poison(Exception):
    """A record the processor rejects; the message is the dead-letter reason."""


def kind(type_name: str) -> str:
    """Short event kind for metrics (`PostCreated`)."""
    return type_name.removeprefix(PREFIX) if type_name in PAYLOAD_FIELD else "unknown"


def check(
    value: bytes | None, key: bytes | None, now_ms: int, max_future_ms: int
) -> tuple[envelope_pb2.Envelope, str, Message, int, str, str]:
    """Parses and checks one record; raises Poison with a reason a person understands. Returns what the
    planner reads next: (envelope, payload field, payload, occurred_at in ms, employee_id, department_id).
    Each read of a protobuf field builds a new Python object: every one is read once."""
    if not value:
        raise Poison("empty record value")
    try:
        env = _parse(value)
    except DecodeError as exc:
        raise Poison(f"undecodable Envelope: {exc}") from None
    type_name = env.type
    field = PAYLOAD_FIELD.get(type_name)
    if field is None:
        raise Poison(f"unknown event type {type_name!r}")
    payload_field = env.WhichOneof("payload")
    if payload_field != field:
        raise Poison(f"type {type_name} but payload {payload_field!r}")
    if not env.event_id:
        raise Poison("event_id is empty")
    employee = env.employee_id
    if not employee or len(employee) > MAX_ID:
        raise Poison("employee_id is empty or too long")
    department = env.department_id
    if _has_control(employee) or _has_control(department):
        raise Poison("employee_id or department_id contains control characters")
    payload = getattr(env, field)
    if field == "employee_registered" and _has_control(payload.display_name):
        raise Poison("employee_registered.display_name contains control characters")
    if key and key.decode("utf-8", "replace") != employee:
        raise Poison("record key differs from employee_id")
    ts = env.occurred_at
    seconds = ts.seconds  # 0 when occurred_at is absent
    if seconds <= 0:
        raise Poison("occurred_at is missing")
    if seconds * 1000 > now_ms + max_future_ms:
        raise Poison("occurred_at is in the future")
    required = REQUIRED.get(field)
    if required is not None:
        for name in required:
            value_ = getattr(payload, name)
            if not value_ or len(value_) > MAX_ID:
                raise Poison(f"{field}.{name} is empty or too long")
    elif field == "profile_updated" and not 0.0 <= payload.completeness <= 1.0:
        raise Poison("profile_updated.completeness must be between 0 and 1")
    return env, field, payload, seconds * 1000 + ts.nanos // 1_000_000, employee, department
