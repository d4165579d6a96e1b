"""Rules for interactions imported from an existing intranet (pure): shape, bounds and the people they name.

Every field the per-employee RPCs take too is checked by the same rule from `domain` (Catalyst ids, kinds,
counts, tags, who may react or accept), so an import is exactly as strict as the API; the source system's own
ids, body lengths and the original time are checked here. Whatever passes makes an event the engagement worker
scores (its checks: services/engagement/model/validation.py): the fuzz suite (tests/integration/fuzz) runs the
real worker on everything these rules let through and finds no dead letter and no one outside the directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2
from google.protobuf.message import Message

from services.common.errors import InvalidArgument
from services.feed import events
from services.feed.domain import (
    PROFILE_FIELDS,
    Limits,
    check_answered_questions,
    check_feedback_kind,
    check_id,
    check_reaction,
    check_session_kind,
    check_tags,
    check_text,
    ensure_can_react,
    ensure_not_own_answer,
)

MAX_FOREIGN_ID_CHARS = 200
NANOS_PER_SECOND = 1_000_000_000

# The source system's own ids in each payload kind: required, at most MAX_FOREIGN_ID_CHARS.
_FOREIGN_IDS: dict[str, tuple[str, ...]] = {
    "post_created": ("post_id",),
    "comment_added": ("comment_id", "post_id"),
    "reaction_added": ("post_id",),
    "question_asked": ("question_id",),
    "answer_posted": ("answer_id", "question_id"),
    "answer_accepted": ("answer_id", "question_id"),
    "profile_updated": (),
    "feature_tried": (),
    "feedback_submitted": ("feedback_id",),
    "survey_answered": (),
    "workshop_attended": (),
}

# Ids the per-employee RPCs take as well (domain.check_id, required).
_CATALYST_IDS = {"feature_tried": "feature_id", "survey_answered": "survey_id", "workshop_attended": "session_id"}

# (author id field, author department field) of the payloads that point at someone else's content.
TARGET_AUTHOR_FIELDS: dict[str, tuple[str, str]] = {
    "comment_added": ("post_author_id", "post_author_department_id"),
    "reaction_added": ("post_author_id", "post_author_department_id"),
    "answer_posted": ("question_author_id", "question_author_department_id"),
    "answer_accepted": ("answer_author_id", "answer_author_department_id"),
}


@dataclass(frozen=True)
class CheckedInteraction:
    index: int  # position in the request, for error messages
    source_id: str
    actor_id: str
    occurred_ms: int
    kind: str
    payload: Message


def check_source(source: str, limits: Limits) -> str:
    return check_id("source", source, limits)


def check_batch_size(count: int, limits: Limits) -> None:
    if count == 0:
        raise InvalidArgument("interactions", "must contain at least one interaction")
    if count > limits.max_ingest_batch:
        raise InvalidArgument("interactions", f"has {count} entries; at most {limits.max_ingest_batch} per call")


def check_foreign_id(field_name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(field_name, "must not be empty")
    if len(value) > MAX_FOREIGN_ID_CHARS:
        raise InvalidArgument(field_name, f"is longer than {MAX_FOREIGN_ID_CHARS} characters")
    return value


def check_occurred_at(item: feed_pb2.ImportedInteraction, where: str, now_ms: int, max_future_ms: int) -> int:
    """The original time in milliseconds: a valid Timestamp after 1970-01-01T00:00:00 (the engagement worker
    reads a time within the epoch's first second as missing) and not in the future beyond the tolerated skew.
    Computed from seconds and nanos directly, so no value can overflow a conversion."""
    field_name = f"{where}.occurred_at"
    if not item.HasField("occurred_at"):
        raise InvalidArgument(field_name, "must be set to the original time of the interaction")
    at = item.occurred_at
    if not 0 <= at.nanos < NANOS_PER_SECOND:
        raise InvalidArgument(f"{field_name}.nanos", f"is {at.nanos}; it must be between 0 and 999999999")
    if at.seconds <= 0:
        raise InvalidArgument(
            f"{field_name}.seconds", "must be after 1970-01-01T00:00:00Z, the original time of the interaction"
        )
    occurred_ms = at.seconds * 1000 + at.nanos // 1_000_000
    if occurred_ms > now_ms + max_future_ms:
        raise InvalidArgument(field_name, "lies in the future; check the source system's clock")
    return occurred_ms


def check_interaction(
    item: feed_pb2.ImportedInteraction, index: int, now_ms: int, max_future_ms: int, limits: Limits
) -> CheckedInteraction:
    """Validates one imported interaction; errors name `interactions[i].<field>`."""
    where = f"interactions[{index}]"
    source_id = check_foreign_id(f"{where}.source_id", item.source_id)
    actor = check_id(f"{where}.actor_id", item.actor_id, limits)
    occurred_ms = check_occurred_at(item, where, now_ms, max_future_ms)
    kind = item.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(f"{where}.kind", "set exactly one interaction kind, e.g. post_created")
    payload = getattr(item, kind)
    copy = type(payload)()
    copy.CopyFrom(payload)
    _check_payload(f"{where}.{kind}", kind, copy, actor, limits)
    return CheckedInteraction(index, source_id, actor, occurred_ms, kind, copy)


def _check_payload(where: str, kind: str, payload: Message, actor: str, limits: Limits) -> None:
    """Checks a copy of the payload and normalises it in place as the API would have written it."""
    fields = payload.DESCRIPTOR.fields_by_name
    for name in _FOREIGN_IDS[kind]:
        setattr(payload, name, check_foreign_id(f"{where}.{name}", getattr(payload, name)))
    if kind in _CATALYST_IDS:
        name = _CATALYST_IDS[kind]
        setattr(payload, name, check_id(f"{where}.{name}", getattr(payload, name), limits))
    if kind in TARGET_AUTHOR_FIELDS:
        author, department = TARGET_AUTHOR_FIELDS[kind]
        setattr(payload, author, check_id(f"{where}.{author}", getattr(payload, author), limits))
        setattr(
            payload, department, check_id(f"{where}.{department}", getattr(payload, department), limits, required=False)
        )
    if "target_department_id" in fields:
        payload.target_department_id = check_id(
            f"{where}.target_department_id", payload.target_department_id, limits, required=False
        )
    if "tags" in fields:
        payload.tags[:] = check_tags(payload.tags, limits, f"{where}.tags")
    if "body_length" in fields and payload.body_length < 0:
        raise InvalidArgument(f"{where}.body_length", "must not be negative")
    match kind:
        case "post_created":
            if payload.kind == ev.POST_KIND_QUESTION:
                raise InvalidArgument(f"{where}.kind", "import questions as question_asked")
            if payload.kind not in (ev.POST_KIND_UNSPECIFIED, ev.POST_KIND_POST):
                raise InvalidArgument(f"{where}.kind", "must be POST_KIND_POST (or left unset)")
            payload.kind = ev.POST_KIND_POST
        case "reaction_added":
            check_reaction(payload.reaction, f"{where}.reaction")
            ensure_can_react(payload.post_author_id, actor, f"{where}.post_author_id")
        case "answer_accepted":
            ensure_not_own_answer(payload.answer_author_id, actor, f"{where}.answer_author_id")
        case "profile_updated":
            if not 0.0 <= payload.completeness <= 1.0:
                raise InvalidArgument(f"{where}.completeness", "must be between 0.0 and 1.0")
            for i, name in enumerate(payload.changed_fields):
                if name not in PROFILE_FIELDS:
                    raise InvalidArgument(
                        f"{where}.changed_fields[{i}]", f"'{name[:80]}' is not one of {', '.join(PROFILE_FIELDS)}"
                    )
        case "feedback_submitted":
            check_feedback_kind(payload.kind, f"{where}.kind")
            payload.topic = check_text(f"{where}.topic", payload.topic, limits.max_feedback_topic_chars, required=False)
        case "survey_answered":
            check_answered_questions(payload.answered_questions, limits, f"{where}.answered_questions")
        case "workshop_attended":
            check_session_kind(payload.kind, f"{where}.kind")


def first_occurrences(items: Iterable[CheckedInteraction]) -> list[CheckedInteraction]:
    """A source id repeated within one batch counts once (the first one); the rest are duplicates."""
    seen: set[str] = set()
    result = []
    for item in items:
        if item.source_id not in seen:
            seen.add(item.source_id)
            result.append(item)
    return result


def employees_needed(items: Iterable[CheckedInteraction]) -> set[str]:
    """Whose directory entry the envelopes depend on: every actor and every target author (each must be in
    the directory, and the feed fills in an author's department the source left empty)."""
    needed = set()
    for item in items:
        needed.add(item.actor_id)
        target = TARGET_AUTHOR_FIELDS.get(item.kind)
        if target:
            needed.add(getattr(item.payload, target[0]))
    return needed


def _department(departments: Mapping[str, str], employee: str, field_name: str) -> str:
    """An employee the interaction names must be in the directory: nobody unknown is ever scored."""
    department = departments.get(employee)
    if department is None:
        raise InvalidArgument(field_name, f"employee '{employee}' is not in the directory; import the directory first")
    return department


def envelope_for(source: str, item: CheckedInteraction, departments: Mapping[str, str]) -> envelope_pb2.Envelope:
    """The event of an imported interaction: stable id from (source, source id), original time, the
    actor's department from the directory, and a missing target-author department filled from it.
    The actor and the target author must be in the directory."""
    where = f"interactions[{item.index}]"
    department = _department(departments, item.actor_id, f"{where}.actor_id")
    target = TARGET_AUTHOR_FIELDS.get(item.kind)
    author_department = ""
    if target:
        author = getattr(item.payload, target[0])
        author_department = _department(departments, author, f"{where}.{item.kind}.{target[0]}")
    env = events.envelope(
        event_id=events.ingest_event_id(source, item.source_id),
        occurred_ms=item.occurred_ms,
        producer=events.ingest_producer(source),
        employee_id=item.actor_id,
        department_id=department,
        payload=item.payload,
    )
    payload = getattr(env, env.WhichOneof("payload"))
    if target and not getattr(payload, target[1]):
        setattr(payload, target[1], author_department)
    return env
