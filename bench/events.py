"""A seeded stream of realistic interaction envelopes for benchmarks: every employee registered first, then
many employees over a 100-day span with a mix of kinds close to what an intranet produces (reactions
dominate, then comments, posts, answers)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from catalyst.events.v1 import envelope_pb2, interactions_pb2
from google.protobuf.timestamp_pb2 import Timestamp

DAY = 86_400
START = 1_767_225_600  # 2026-01-01T00:00:00Z

KINDS = [
    ("reaction_added", 55),
    ("comment_added", 20),
    ("post_created", 8),
    ("answer_posted", 6),
    ("question_asked", 4),
    ("feature_tried", 3),
    ("profile_updated", 2),
    ("feedback_submitted", 2),
]


def employee_id(n: int) -> str:
    return f"emp-{n:06d}"


def department_id(n: int, departments: int) -> str:
    return f"dept-{n % departments:02d}"


def registrations(employees: int, departments: int) -> Iterator[envelope_pb2.Envelope]:
    """What feed emits for a directory import: each employee's department and name."""
    for n in range(employees):
        env = envelope_pb2.Envelope(
            event_id=f"bench-reg-{n}",
            producer="bench",
            type="catalyst.events.v1.EmployeeRegistered",
            employee_id=employee_id(n),
            department_id=department_id(n, departments),
            occurred_at=Timestamp(seconds=START - DAY),
        )
        env.employee_registered.display_name = f"Employee {n}"
        yield env


def interactions(
    count: int, employees: int, departments: int, first_second: int, span_seconds: int, seed: int, tag: str
) -> Iterator[envelope_pb2.Envelope]:
    """`count` interactions spread evenly (plus jitter) over `span_seconds` from `first_second`."""
    rng = random.Random(seed)
    names = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    for i in range(count):
        actor = rng.randrange(employees)
        other = (actor + 1 + rng.randrange(employees - 1)) % employees
        env = envelope_pb2.Envelope(
            event_id=f"bench-{tag}-{i}",
            producer="bench",
            employee_id=employee_id(actor),
            department_id=department_id(actor, departments),
            occurred_at=Timestamp(seconds=first_second + (i * span_seconds) // max(count, 1) + rng.randrange(3600)),
        )
        kind = rng.choices(names, weights)[0]
        target = employee_id(other)
        target_dept = department_id(other, departments)
        post = f"post-{other}-{rng.randrange(50)}"
        match kind:
            case "reaction_added":
                env.reaction_added.CopyFrom(
                    interactions_pb2.ReactionAdded(
                        post_id=post,
                        post_author_id=target,
                        post_author_department_id=target_dept,
                        reaction=interactions_pb2.REACTION_KIND_LIKE,
                    )
                )
            case "comment_added":
                env.comment_added.CopyFrom(
                    interactions_pb2.CommentAdded(
                        comment_id=f"c-{tag}-{i}",
                        post_id=post,
                        post_author_id=target,
                        post_author_department_id=target_dept,
                        body_length=rng.randrange(20, 400),
                    )
                )
            case "post_created":
                env.post_created.CopyFrom(
                    interactions_pb2.PostCreated(
                        post_id=f"post-{actor}-{tag}-{i}",
                        kind=interactions_pb2.POST_KIND_POST,
                        body_length=rng.randrange(100, 2000),
                    )
                )
            case "answer_posted":
                env.answer_posted.CopyFrom(
                    interactions_pb2.AnswerPosted(
                        answer_id=f"a-{tag}-{i}",
                        question_id=post,
                        question_author_id=target,
                        question_author_department_id=target_dept,
                        body_length=rng.randrange(50, 800),
                    )
                )
            case "question_asked":
                env.question_asked.CopyFrom(
                    interactions_pb2.QuestionAsked(
                        question_id=f"q-{actor}-{tag}-{i}", body_length=rng.randrange(50, 500)
                    )
                )
            case "feature_tried":
                env.feature_tried.CopyFrom(interactions_pb2.FeatureTried(feature_id=f"f-{rng.randrange(20)}"))
            case "profile_updated":
                env.profile_updated.CopyFrom(interactions_pb2.ProfileUpdated(completeness=rng.random()))
            case "feedback_submitted":
                env.feedback_submitted.CopyFrom(
                    interactions_pb2.FeedbackSubmitted(
                        feedback_id=f"fb-{tag}-{i}",
                        kind=interactions_pb2.FEEDBACK_KIND_SUGGESTION,
                        body_length=rng.randrange(50, 500),
                    )
                )
        env.type = getattr(env, kind).DESCRIPTOR.full_name
        yield env


def history(
    count: int, employees: int = 20_000, departments: int = 12, days: int = 100, seed: int = 7
) -> Iterator[tuple[bytes, bytes]]:
    """`count` records in total: the registrations, then interactions over `days` days, as (key, value)."""
    registered = min(employees, count)
    for env in registrations(registered, departments):
        yield env.employee_id.encode(), env.SerializeToString()
    for env in interactions(count - registered, employees, departments, START, days * DAY, seed, "h"):
        yield env.employee_id.encode(), env.SerializeToString()


def live(
    count: int, employees: int, departments: int, first_second: int, seed: int = 11, tag: str = "live"
) -> list[tuple[bytes, bytes]]:
    """Records for the latency phase (and its warm-up, another tag): event times within one hour."""
    return [
        (env.employee_id.encode(), env.SerializeToString())
        for env in interactions(count, employees, departments, first_second, 3600, seed, tag)
    ]
