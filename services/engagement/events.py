"""Decoding and validating interaction records: anything the processor cannot score safely is poison."""

from __future__ import annotations

import re

from catalyst.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError

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


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


class Poison(Exception):
    """A record the processor rejects; the message is the dead-letter reason."""


def kind(type_name: str) -> str:
    """Short event kind for metrics (`PostCreated`)."""
    return type_name.removeprefix(PREFIX) if type_name in PAYLOAD_FIELD else "unknown"


def decode(value: bytes | None, key: bytes | None, now_ms: int, max_future_ms: int) -> envelope_pb2.Envelope:
    """Parses and checks one record; raises Poison with a reason a person understands."""
    if not value:
        raise Poison("empty record value")
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(value)
    except DecodeError as exc:
        raise Poison(f"undecodable Envelope: {exc}") from None
    field = PAYLOAD_FIELD.get(env.type)
    if field is None:
        raise Poison(f"unknown event type {env.type!r}")
    if env.WhichOneof("payload") != field:
        raise Poison(f"type {env.type} but payload {env.WhichOneof('payload')!r}")
    if not env.event_id:
        raise Poison("event_id is empty")
    if not env.employee_id or len(env.employee_id) > MAX_ID:
        raise Poison("employee_id is empty or too long")
    if _has_control(env.employee_id) or _has_control(env.department_id):
        raise Poison("employee_id or department_id contains control characters")
    if field == "employee_registered" and _has_control(env.employee_registered.display_name):
        raise Poison("employee_registered.display_name contains control characters")
    if key is not None and key and key.decode("utf-8", "replace") != env.employee_id:
        raise Poison("record key differs from employee_id")
    if not env.HasField("occurred_at") or env.occurred_at.seconds <= 0:
        raise Poison("occurred_at is missing")
    if env.occurred_at.seconds * 1000 > now_ms + max_future_ms:
        raise Poison("occurred_at is in the future")
    payload = getattr(env, field)
    for name in REQUIRED.get(field, ()):
        value_ = getattr(payload, name)
        if not value_ or len(value_) > MAX_ID:
            raise Poison(f"{field}.{name} is empty or too long")
    if field == "profile_updated" and not 0.0 <= payload.completeness <= 1.0:
        raise Poison("profile_updated.completeness must be between 0 and 1")
    return env
