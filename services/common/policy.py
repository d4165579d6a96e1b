"""The policy file (deploy/config/policy.yaml): its schema and loader.

One validated file states the rules a works agreement fixes. Each concern is a section of its own (today
`retention`); a new concern adds a section model here and a field to `Policy`, so the file grows by sections
without touching the others. Unknown keys are errors, so a misspelt switch never falls back to a default
silently.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from services.common.config_files import load_validated

DEFAULT_POLICY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "policy.yaml"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(value: object) -> timedelta:
    """'400d', '12h', '30m' or '45s': a whole number and one unit, so the file reads like the agreement."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"'{value}' is not a duration; write a whole number and a unit: 400d, 12h, 30m or 45s")
    amount = int(match.group(1))
    if amount < 1:
        raise ValueError(f"'{value}' must be longer than zero")
    return timedelta(**{_UNITS[match.group(2)]: amount})


def _format(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(_format)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedRetention(_Section):
    """How long the feed keeps the texts people wrote."""

    posts: Duration = Field(description="posts and questions, with their comments, answers and reactions")
    feedback: Duration = Field(description="feedback, suggestions and bug reports")


class RecognitionRetention(_Section):
    """How long recognition keeps the history of badges a person lost."""

    revoked_badges: Duration = Field(description="a revoked badge's evidence, reason and dates")


class RetentionPolicy(_Section):
    """Every store and topic that holds personal data has a limit here."""

    feed: FeedRetention
    recognition: RecognitionRetention
    topics: dict[str, Duration] = Field(
        description="retention of every delete-policy topic in deploy/topics.yaml, by its key"
    )
    erasure_markers: Duration = Field(
        description="how long consumers keep the keyed marker of an erased person (at least the raw events' "
        "retention, so no replay of a raw event can recreate them)"
    )
    sweep_interval: Duration = Field(description="how often each service removes what passed its limit")

    @model_validator(mode="after")
    def _markers_outlive_replays(self) -> RetentionPolicy:
        raw = self.topics.get("interactions")
        if raw is None:
            raise ValueError("topics must state the retention of 'interactions' (the raw events)")
        if self.erasure_markers < raw:
            raise ValueError(
                f"erasure_markers ({_format(self.erasure_markers)}) must be at least the interactions topic's "
                f"retention ({_format(raw)}): a replay of an older raw event would otherwise recreate an erased person"
            )
        return self


class Profile(StrEnum):
    WORKS_COUNCIL = "works_council"  # what a German works agreement can accept: the floors below hold
    CUSTOM = "custom"  # for companies without co-determination; the switches alone decide


class Rankings(StrEnum):
    NONE = "none"  # no ranking of people exists for anyone, not even stored
    OPTED_IN = "opted_in"  # leaderboards list only the people who chose to take part


WORKS_COUNCIL_MIN_GROUP = 5


class VisibilityPolicy(_Section):
    """Who sees which figures about whom. Everyone always sees their own score, explanation, badges and
    progress; the programme owner sees a person's figures with a stated purpose, audited."""

    profile: Profile = Field(description="works_council: the minimum group size cannot go below 5")
    rankings: Rankings = Field(description="none: no leaderboards; opted_in: only people who opted in are ranked")
    colleague_scores: Rankings = Field(
        description="none: an employee never sees a colleague's figures; opted_in: the score windows of a "
        "colleague who opted in to ranking (never their signals or explanation)"
    )
    min_group_size: int = Field(ge=2, description="no figure about a group smaller than this appears anywhere")

    @model_validator(mode="after")
    def _works_council_floor(self) -> VisibilityPolicy:
        if self.profile is Profile.WORKS_COUNCIL and self.min_group_size < WORKS_COUNCIL_MIN_GROUP:
            raise ValueError(
                f"min_group_size is {self.min_group_size}, but the works_council profile needs at least "
                f"{WORKS_COUNCIL_MIN_GROUP}: smaller groups single people out"
            )
        return self

    def ranked(self, opted_in: bool) -> bool:
        """Whether a person with this choice appears on leaderboards."""
        return self.rankings is Rankings.OPTED_IN and opted_in


class Policy(_Section):
    """The whole policy file: one field per section."""

    retention: RetentionPolicy
    visibility: VisibilityPolicy


def policy_path() -> Path:
    return Path(os.environ.get("CATALYST_POLICY_FILE", DEFAULT_POLICY_FILE))


@cache
def load_policy(path: Path | None = None) -> Policy:
    """Reads and validates the policy file; any problem becomes one readable start-up error."""
    return load_validated(path or policy_path(), Policy, "policy file")
