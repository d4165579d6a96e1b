"""Which interaction records the engagement worker accepts, and why it refuses the others (dead letters).

A record refused here can never be scored safely; the reason is written for a person. The feed refuses the
same at its API (docs/feed.md), so what it acknowledged is never dead-lettered here.
"""

from __future__ import annotations

import re

from catalyst.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError

PREFIX = "catalyst.events.v1."
# Envelope.type -> the oneof field that must carry the payload. Only these are accepted on the interactions topic.
PAYLOAD_FIELD = {
    f"{PREFIX}{name}": field
    for name, field in (
        ("PostCreated", "post_created"),
        ("PostEdited", "post_edited"),
        ("PostDeleted", "post_deleted"),
        ("CommentAdded", "comment_added"),
        ("ReactionAdded", "reaction_added"),
        ("ReactionRemoved", "reaction_removed"),
        ("QuestionAsked", "question_asked"),
        ("AnswerPosted", "answer_posted"),
        ("AnswerAccepted", "answer_accepted"),
        ("ProfileUpdated", "profile_updated"),
        ("FeatureTried", "feature_tried"),
        ("FeedbackSubmitted", "feedback_submitted"),
        ("SurveyAnswered", "survey_answered"),
        ("WorkshopAttended", "workshop_attended"),
        ("EmployeeForgotten", "employee_forgotten"),
        ("EmployeeRegistered", "employee_registered"),
    )
}
KIND = {payload: type_name.removeprefix(PREFIX) for type_name, payload in PAYLOAD_FIELD.items()}
MAX_ID = 128  # characters in an employee id or the other party's id
# The payload field each event type cannot do without.
REQUIRED = {
    "comment_added": "post_author_id",
    "reaction_added": "post_author_id",
    "answer_posted": "question_author_id",
    "answer_accepted": "answer_author_id",
    "feature_tried": "feature_id",
    "survey_answered": "survey_id",
    "workshop_attended": "session_id",
}


class Invalid(ValueError):
    """A record that cannot be scored; its message is the dead-letter reason."""


_has_control = re.compile("[\x00-\x1f\x7f]").search


def decode(key: bytes | None, value: bytes | None) -> envelope_pb2.Envelope:
    """The Envelope of a record, or Invalid."""
    if not value:
        raise Invalid("empty record value")
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(value)
    except DecodeError as exc:
        raise Invalid(f"undecodable Envelope: {exc}") from None
    return env


def check(env: envelope_pb2.Envelope, key: bytes | None, now_ms: int, max_future_ms: int) -> str:
    """The payload field of a valid interaction record; Invalid with the reason otherwise."""
    payload = env.WhichOneof("payload")
    expected = PAYLOAD_FIELD.get(env.type)
    if expected is None:
        raise Invalid(f"unknown event type {env.type!r}")
    if payload != expected:
        raise Invalid(f"type {env.type} but payload {payload!r}")
    if not env.event_id:
        raise Invalid("event_id is empty")
    employee = env.employee_id
    if not employee or len(employee) > MAX_ID:
        raise Invalid("employee_id is empty or too long")
    if _has_control(employee) or _has_control(env.department_id):
        raise Invalid("employee_id or department_id contains control characters")
    if payload == "employee_registered" and _has_control(env.employee_registered.display_name):
        raise Invalid("employee_registered.display_name contains control characters")
    if key and key.decode(errors="replace") != employee:
        raise Invalid("record key differs from employee_id")
    seconds = env.occurred_at.seconds
    if seconds <= 0:
        raise Invalid("occurred_at is missing")
    if seconds * 1000 > now_ms + max_future_ms:
        raise Invalid("occurred_at is in the future")
    required = REQUIRED.get(payload)
    if required is not None:
        value = getattr(getattr(env, payload), required)
        if not value or len(value) > MAX_ID:
            raise Invalid(f"{payload}.{required} is empty or too long")
    if payload == "profile_updated" and not 0.0 <= env.profile_updated.completeness <= 1.0:
        raise Invalid("profile_updated.completeness must be between 0 and 1")
    return payload
