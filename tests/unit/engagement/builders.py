"""Builders of interaction Envelopes for the engagement tests (unit and integration)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from catalyst.events.v1 import envelope_pb2, interactions_pb2
from google.protobuf.timestamp_pb2 import Timestamp

DAY = 86_400
_ids = itertools.count()

FEEDBACK_KINDS = [interactions_pb2.FEEDBACK_KIND_FEEDBACK, interactions_pb2.FEEDBACK_KIND_SUGGESTION]
PAYLOADS = {
    "PostCreated": "post_created",
    "CommentAdded": "comment_added",
    "ReactionAdded": "reaction_added",
    "ReactionRemoved": "reaction_removed",
    "QuestionAsked": "question_asked",
    "AnswerPosted": "answer_posted",
    "AnswerAccepted": "answer_accepted",
    "ProfileUpdated": "profile_updated",
    "FeatureTried": "feature_tried",
    "FeedbackSubmitted": "feedback_submitted",
    "SurveyAnswered": "survey_answered",
    "WorkshopAttended": "workshop_attended",
    "EmployeeRegistered": "employee_registered",
    "EmployeeForgotten": "employee_forgotten",
    "PostEdited": "post_edited",
    "PostDeleted": "post_deleted",
}


def event(kind: str, employee: str, seconds: int, dept: str = "d1", /, **fields: object) -> envelope_pb2.Envelope:
    """An Envelope of `kind` (e.g. "ReactionAdded") with payload fields; ids are unique per call."""
    env = envelope_pb2.Envelope(
        event_id=f"t-{next(_ids)}",
        producer="test",
        type=f"catalyst.events.v1.{kind}",
        employee_id=employee,
        department_id=dept,
        occurred_at=Timestamp(seconds=seconds),
    )
    payload = getattr(env, PAYLOADS[kind])
    payload.SetInParent()
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(payload, name).extend(value)
        else:
            setattr(payload, name, value)
    return env


def react(giver: str, author: str, seconds: int, dept: str = "d1", author_dept: str = "d1") -> envelope_pb2.Envelope:
    return event(
        "ReactionAdded",
        giver,
        seconds,
        dept,
        post_id="p",
        post_author_id=author,
        post_author_department_id=author_dept,
        reaction=interactions_pb2.REACTION_KIND_LIKE,
    )


def comment(giver: str, author: str, seconds: int, dept: str = "d1", author_dept: str = "d1") -> envelope_pb2.Envelope:
    return event(
        "CommentAdded",
        giver,
        seconds,
        dept,
        comment_id="c",
        post_id="p",
        post_author_id=author,
        post_author_department_id=author_dept,
        body_length=10,
    )


def post(author: str, seconds: int, dept: str = "d1") -> envelope_pb2.Envelope:
    return event("PostCreated", author, seconds, dept, post_id="p", kind=interactions_pb2.POST_KIND_POST)


def mixed_history(
    employees: int, days: int, per_day: int, end_seconds: int, seed: int = 7, departments: int = 3
) -> Iterator[envelope_pb2.Envelope]:
    """A realistic-looking random history, in time order, covering every scored event kind."""
    rng = random.Random(seed)
    people = [f"e{n:04d}" for n in range(employees)]
    dept = {p: f"dept-{i % departments}" for i, p in enumerate(people)}
    start = end_seconds - days * DAY
    for p in people:
        yield event("EmployeeRegistered", p, start - DAY, dept[p], display_name=f"Person {p}")
    for day in range(days):
        for _ in range(per_day):
            t = start + day * DAY + rng.randrange(DAY)
            a, b = rng.sample(people, 2)
            if rng.random() < 0.05:
                b = a
            r = rng.random()
            if r < 0.12:
                yield post(a, t, dept[a])
            elif r < 0.40:
                yield react(a, b, t, dept[a], dept[b])
            elif r < 0.55:
                yield comment(a, b, t, dept[a], dept[b])
            elif r < 0.62:
                yield event("QuestionAsked", a, t, dept[a], question_id="q", body_length=5)
            elif r < 0.72:
                yield event(
                    "AnswerPosted",
                    a,
                    t,
                    dept[a],
                    answer_id="x",
                    question_id="q",
                    question_author_id=b,
                    question_author_department_id=dept[b],
                    body_length=5,
                )
            elif r < 0.78:
                yield event(
                    "AnswerAccepted",
                    a,
                    t,
                    dept[a],
                    answer_id="x",
                    question_id="q",
                    answer_author_id=b,
                    answer_author_department_id=dept[b],
                )
            elif r < 0.83:
                yield event("ProfileUpdated", a, t, dept[a], completeness=rng.choice([0.2, 0.5, 0.8, 1.0]))
            elif r < 0.88:
                yield event("FeatureTried", a, t, dept[a], feature_id=f"f{rng.randrange(5)}")
            elif r < 0.92:
                yield event(
                    "FeedbackSubmitted",
                    a,
                    t,
                    dept[a],
                    feedback_id="fb",
                    kind=rng.choice(FEEDBACK_KINDS),
                )
            elif r < 0.95:
                yield event("SurveyAnswered", a, t, dept[a], survey_id="s", pre_launch=rng.random() < 0.5)
            elif r < 0.98:
                yield event(
                    "WorkshopAttended",
                    a,
                    t,
                    dept[a],
                    session_id="w",
                    pre_launch=True,
                    kind=rng.choice([interactions_pb2.SESSION_KIND_WORKSHOP, interactions_pb2.SESSION_KIND_INTERVIEW]),
                    contributed=rng.random() < 0.5,
                )
            else:
                yield event("ReactionRemoved", a, t, dept[a], post_id="p", post_author_id=b)
