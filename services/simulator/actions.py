"""The simulator's vocabulary: one `Action` per thing a simulated person does (pure data, no protobuf)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class ActionKind(enum.StrEnum):
    POST = "post"
    QUESTION = "question"
    COMMENT = "comment"
    REACTION = "reaction"
    ANSWER = "answer"
    ACCEPT = "accept"
    PROFILE_UPDATE = "profile_update"
    FEATURE_TRIAL = "feature_trial"
    FEEDBACK = "feedback"
    SURVEY = "survey"
    WORKSHOP = "workshop"


class Reaction(enum.StrEnum):
    LIKE = "like"
    CELEBRATE = "celebrate"
    INSIGHTFUL = "insightful"
    SUPPORT = "support"
    FUNNY = "funny"


class FeedbackKind(enum.StrEnum):
    FEEDBACK = "feedback"
    SUGGESTION = "suggestion"
    BUG_REPORT = "bug_report"


class SessionKind(enum.StrEnum):
    WORKSHOP = "workshop"
    INTERVIEW = "interview"


class Phase(enum.StrEnum):
    PRE_LAUNCH = "pre_launch"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Action:
    """One thing one person did at one event time.

    `post_id` is the post or question created (POST, QUESTION) or acted on (COMMENT, REACTION, ANSWER, ACCEPT).
    `item_id` is the comment, answer or feedback created, the accepted answer, the tried feature, the survey
    or the session. `counterpart_*` name the author of what was acted on (for ACCEPT: the answer's author).
    """

    source_id: str
    kind: ActionKind
    actor_id: str
    occurred_at: dt.datetime
    post_id: str = ""
    item_id: str = ""
    counterpart_id: str = ""
    counterpart_department_id: str = ""
    audience_department_id: str = ""
    body_length: int = 0
    tags: tuple[str, ...] = ()
    reaction: Reaction | None = None
    feedback_kind: FeedbackKind | None = None
    topic: str = ""
    session_kind: SessionKind | None = None
    pre_launch: bool = False
    contributed: bool = False
    answered_questions: int = 0
    completeness: float = 0.0
    changed_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SimulatedDay:
    index: int
    date: dt.date
    phase: Phase
    actions: tuple[Action, ...]
