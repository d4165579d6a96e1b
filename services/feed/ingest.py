"""Rules for interactions imported from an existing intranet (pure): shape, bounds and target authors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2
from google.protobuf.message import Message

from services.common.errors import InvalidArgument
from services.feed import events
from services.feed.domain import REACTION_NAMES, Limits, check_id

MAX_FOREIGN_ID_CHARS = 200

# Fields that must be set per payload kind (ids from the source system).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "post_created": ("post_id",),
    "comment_added": ("comment_id", "post_id", "post_author_id"),
    "reaction_added": ("post_id", "post_author_id"),
    "question_asked": ("question_id",),
    "answer_posted": ("answer_id", "question_id", "question_author_id"),
    "answer_accepted": ("answer_id", "question_id", "answer_author_id"),
    "profile_updated": (),
    "feature_tried": ("feature_id",),
    "feedback_submitted": ("feedback_id",),
    "survey_answered": ("survey_id",),
    "workshop_attended": ("session_id",),
}

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


def check_interaction(
    item: feed_pb2.ImportedInteraction, index: int, now_ms: int, max_future_ms: int, limits: Limits
) -> CheckedInteraction:
    """Validates one imported interaction; errors name `interactions[i].<field>`."""
    where = f"interactions[{index}]"
    source_id = item.source_id.strip()
    if not source_id:
        raise InvalidArgument(f"{where}.source_id", "must not be empty")
    if len(source_id) > MAX_FOREIGN_ID_CHARS:
        raise InvalidArgument(f"{where}.source_id", f"is longer than {MAX_FOREIGN_ID_CHARS} characters")
    actor = check_id(f"{where}.actor_id", item.actor_id, limits)
    if not item.HasField("occurred_at") or item.occurred_at.ToMilliseconds() <= 0:
        raise InvalidArgument(f"{where}.occurred_at", "must be set to the original time of the interaction")
    occurred_ms = item.occurred_at.ToMilliseconds()
    if occurred_ms > now_ms + max_future_ms:
        raise InvalidArgument(f"{where}.occurred_at", "lies in the future; check the source system's clock")
    kind = item.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(f"{where}.kind", "set exactly one interaction kind, e.g. post_created")
    payload = getattr(item, kind)
    _check_payload(f"{where}.{kind}", kind, payload, limits)
    copy = type(payload)()
    copy.CopyFrom(payload)
    if kind == "post_created" and copy.kind == ev.POST_KIND_UNSPECIFIED:
        copy.kind = ev.POST_KIND_POST
    return CheckedInteraction(index, source_id, actor, occurred_ms, kind, copy)


def _check_payload(where: str, kind: str, payload: Message, limits: Limits) -> None:
    for name in _REQUIRED[kind]:
        if not getattr(payload, name).strip():
            raise InvalidArgument(f"{where}.{name}", "must not be empty")
    for fd, value in payload.ListFields():
        if fd.type == fd.TYPE_STRING:
            values = list(value) if fd.is_repeated else [value]
            if fd.is_repeated and len(values) > limits.max_tags:
                raise InvalidArgument(f"{where}.{fd.name}", f"has {len(values)} entries; at most {limits.max_tags}")
            for text in values:
                if len(text) > MAX_FOREIGN_ID_CHARS:
                    raise InvalidArgument(f"{where}.{fd.name}", f"is longer than {MAX_FOREIGN_ID_CHARS} characters")
        elif fd.name == "body_length" and value < 0:
            raise InvalidArgument(f"{where}.body_length", "must not be negative")
    if kind == "post_created" and payload.kind == ev.POST_KIND_QUESTION:
        raise InvalidArgument(f"{where}.kind", "import questions as question_asked")
    if kind == "reaction_added" and payload.reaction not in REACTION_NAMES:
        raise InvalidArgument(f"{where}.reaction", "must be a known reaction kind")
    if kind == "feedback_submitted" and payload.kind == ev.FEEDBACK_KIND_UNSPECIFIED:
        raise InvalidArgument(f"{where}.kind", "must be a feedback kind")
    if kind == "workshop_attended" and payload.kind == ev.SESSION_KIND_UNSPECIFIED:
        raise InvalidArgument(f"{where}.kind", "must be a session kind")
    if kind == "profile_updated" and not 0.0 <= payload.completeness <= 1.0:
        raise InvalidArgument(f"{where}.completeness", "must be between 0.0 and 1.0")


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
    """Whose directory entry the envelopes depend on: every actor, and each target author whose
    department the source left empty (the feed fills it in)."""
    needed = set()
    for item in items:
        needed.add(item.actor_id)
        target = TARGET_AUTHOR_FIELDS.get(item.kind)
        if target and not getattr(item.payload, target[1]):
            needed.add(getattr(item.payload, target[0]))
    return needed


def envelope_for(source: str, item: CheckedInteraction, departments: Mapping[str, str]) -> envelope_pb2.Envelope:
    """The event of an imported interaction: stable id from (source, source id), original time, the
    actor's department from the directory, and a missing target-author department filled from it
    (empty when the author is not in the directory). The actor must be in the directory."""
    department = departments.get(item.actor_id)
    if department is None:
        raise InvalidArgument(
            f"interactions[{item.index}].actor_id",
            f"employee '{item.actor_id}' is not in the directory; import the directory first",
        )
    env = events.envelope(
        event_id=events.ingest_event_id(source, item.source_id),
        occurred_ms=item.occurred_ms,
        producer=events.ingest_producer(source),
        employee_id=item.actor_id,
        department_id=department,
        payload=item.payload,
    )
    target = TARGET_AUTHOR_FIELDS.get(item.kind)
    payload = getattr(env, env.WhichOneof("payload"))
    if target and not getattr(payload, target[1]):
        setattr(payload, target[1], departments.get(getattr(payload, target[0]), ""))
    return env
