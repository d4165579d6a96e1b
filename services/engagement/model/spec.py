"""What each interaction counts, for whom, on which day: the counters of the engagement score, as data.

Weights, caps and the figures built from these counts live in deploy/config/scoring.yaml (`config.py`);
`effects.py` reads the tables below, and nothing else names an event type or a counter. A counter's `code`
is its name in Redis: short, stable, never reused (docs/scoring-model.md, "Adding a signal").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalyst.events.v1 import interactions_pb2

ACTOR = ""  # `Count.who`: the employee who acted


def always(payload: Any) -> bool:
    return True


@dataclass(frozen=True)
class Counter:
    """A count per employee and day. `own`: the employee's own doing (active days, department activity)."""

    name: str
    code: str
    words: str
    own: bool = True


@dataclass(frozen=True)
class Count:
    """An event adds 1 to `counter` of `who` (the actor, or the employee a payload field names).

    `per` names a payload field (or ACTOR): then the count is kept per (day, that colleague or value) and
    credited at most the cap of `group` a day (no group: not capped), counters of one group in the order of
    COUNTERS. `same_department`: only when both parties' departments are known and equal. `other_department`:
    True only when both are known and differ, False only when they do not.
    """

    counter: str
    who: str = ACTOR
    per: str | None = None
    group: str = ""
    when: Callable[[Any], bool] = always
    same_department: bool = False
    other_department: bool | None = None


@dataclass(frozen=True)
class Total:
    """An all-time count (never leaves a window): pre-launch participation."""

    counter: str
    when: Callable[[Any], bool] = always


@dataclass(frozen=True)
class Rule:
    """What one event type does. `counterpart`: the payload field naming the other employee; an event with
    oneself as counterpart counts nothing. `department_of`: the payload field with the counterpart's
    department."""

    counts: tuple[Count, ...] = ()
    totals: tuple[Total, ...] = ()
    counterpart: str = ""
    department_of: str = ""
    latest: tuple[tuple[str, str], ...] = ()  # (attribute, payload field): the newest value by event time


COUNTERS = (
    Counter("posts", "p", "posts and questions"),
    Counter("questions", "k", "questions asked"),
    Counter("answers", "a", "answers to colleagues' questions"),
    Counter("comments", "c", "comments on colleagues' posts"),
    Counter("reactions", "r", "reactions to colleagues' posts"),
    Counter("answers_own", "o", "answers to colleagues in your own department (bonus)", own=False),
    Counter("accepted", "x", "of your answers accepted", own=False),
    Counter("accepted_own", "y", "accepted answers in your own department (bonus)", own=False),
    Counter("trials", "t", "new features tried"),
    Counter("feedback", "f", "pieces of feedback"),
    Counter("suggestions", "s", "suggestions"),
    Counter("participation", "q", "surveys and sessions attended"),
    Counter("profile_updates", "u", "profile updates"),
    Counter("received", "v", "reactions, comments and answers received", own=False),
    Counter("received_other", "w", "reactions, comments and answers from other departments", own=False),
)
TOTALS = (
    Counter("surveys", "S", "pre-launch surveys answered"),
    Counter("workshops", "W", "pre-launch workshops attended"),
    Counter("interviews", "I", "pre-launch interviews given"),
    Counter("contributions", "C", "pre-launch sessions with a contribution"),
)
LATEST = {"completeness": "c", "department": "d", "name": "n"}  # attribute -> code

# Words for the figures a term derives rather than counts (`as:` in scoring.yaml).
WORDS = {
    "active_weeks": "weeks with at least one post",
    "received_interactions": "reactions, comments and answers received",
    "distinct_colleagues": "different colleagues who reacted, commented or answered on your content",
    "other_department_colleagues": "of them from other departments",
    "completeness": "profile completeness",
    "profile_update_days": "days with a profile update",
}

_SUGGESTION = interactions_pb2.FEEDBACK_KIND_SUGGESTION
_INTERVIEW = interactions_pb2.SESSION_KIND_INTERVIEW


def _received(author: str) -> tuple[Count, Count]:
    """What the author of the content counts: who interacted with it, per colleague and day (reach), at most
    the `received` cap from one colleague a day."""
    return (
        Count("received", who=author, per=ACTOR, group="received", other_department=False),
        Count("received_other", who=author, per=ACTOR, group="received", other_department=True),
    )


RULES: dict[str, Rule] = {
    "post_created": Rule(counts=(Count("posts"),)),
    "question_asked": Rule(counts=(Count("posts"), Count("questions"))),
    "comment_added": Rule(
        counts=(Count("comments", per="post_author_id", group="given"), *_received("post_author_id")),
        counterpart="post_author_id",
        department_of="post_author_department_id",
    ),
    "reaction_added": Rule(
        counts=(Count("reactions", per="post_author_id", group="given"), *_received("post_author_id")),
        counterpart="post_author_id",
        department_of="post_author_department_id",
    ),
    "answer_posted": Rule(
        counts=(
            Count("answers", per="question_author_id", group="given"),
            Count("answers_own", per="question_author_id", group="answers_own", same_department=True),
            *_received("question_author_id"),
        ),
        counterpart="question_author_id",
        department_of="question_author_department_id",
    ),
    "answer_accepted": Rule(
        counts=(
            Count("accepted", who="answer_author_id", per=ACTOR, group="accepted"),
            Count("accepted_own", who="answer_author_id", per=ACTOR, group="accepted_own", same_department=True),
        ),
        counterpart="answer_author_id",
        department_of="answer_author_department_id",
    ),
    "profile_updated": Rule(counts=(Count("profile_updates"),), latest=(("completeness", "completeness"),)),
    "feature_tried": Rule(counts=(Count("trials", per="feature_id", group="trials"),)),
    "feedback_submitted": Rule(
        counts=(
            Count("feedback", when=lambda p: p.kind != _SUGGESTION),
            Count("suggestions", when=lambda p: p.kind == _SUGGESTION),
        )
    ),
    "survey_answered": Rule(
        counts=(Count("participation", when=lambda p: not p.pre_launch),),
        totals=(Total("surveys", when=lambda p: p.pre_launch),),
    ),
    "workshop_attended": Rule(
        counts=(Count("participation", when=lambda p: not p.pre_launch),),
        totals=(
            Total("workshops", when=lambda p: p.pre_launch and p.kind != _INTERVIEW),
            Total("interviews", when=lambda p: p.pre_launch and p.kind == _INTERVIEW),
            Total("contributions", when=lambda p: p.pre_launch and p.contributed),
        ),
    ),
}
# Valid events that count nothing: post_edited, post_deleted, reaction_removed. employee_registered and
# employee_forgotten are directory facts (`effects.py`).
