"""Pure rules of the feed: what a valid post, comment, reaction or profile is, and who may do what.

No I/O here: the handlers read state through the store, ask these functions, then write.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from catalyst.events.v1 import interactions_pb2 as ev

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
_TAG = re.compile(r"^[\w][\w.+#-]*$")
_POST_ID = re.compile(r"^p\d{13}[0-9a-f]{8}$")
_COMMENT_ID = re.compile(r"^c\d{13}[0-9a-f]{8}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()/.-]{2,38}$")
_URL = re.compile(r"^https?://[^\s]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

REACTION_NAMES = {v: n.removeprefix("REACTION_KIND_") for n, v in ev.ReactionKind.items() if v}
PROFILE_FIELDS = ("job_title", "location", "about", "skills", "photo_url", "phone")


@dataclass(frozen=True)
class Limits:
    """Every size the feed accepts is bounded; the numbers come from FeedSettings."""

    max_title_chars: int = 200
    max_body_chars: int = 10_000
    max_comment_chars: int = 5_000
    max_tags: int = 10
    max_tag_chars: int = 40
    max_id_chars: int = 64
    max_feedback_topic_chars: int = 100
    max_about_chars: int = 2_000
    max_skills: int = 30
    max_survey_questions: int = 1_000
    page_size_default: int = 20
    page_size_max: int = 100
    max_ingest_batch: int = 500
    max_directory_batch: int = 1_000
    max_short_text_chars: int = 100
    max_url_chars: int = 500


@dataclass(frozen=True)
class Employee:
    employee_id: str
    display_name: str
    department_id: str
    is_manager: bool = False


@dataclass(frozen=True)
class Post:
    post_id: str
    author_id: str
    author_department_id: str
    kind: int
    title: str
    body: str
    tags: tuple[str, ...]
    target_department_id: str
    created_ms: int
    edited_ms: int = 0
    comment_count: int = 0
    accepted_answer_id: str = ""
    reactions: dict[str, int] = field(default_factory=dict)

    @property
    def is_question(self) -> bool:
        return self.kind == ev.POST_KIND_QUESTION


@dataclass(frozen=True)
class Comment:
    comment_id: str
    post_id: str
    author_id: str
    body: str
    is_answer: bool
    created_ms: int
    accepted: bool = False


@dataclass(frozen=True)
class Profile:
    job_title: str = ""
    location: str = ""
    about: str = ""
    skills: tuple[str, ...] = ()
    photo_url: str = ""
    phone: str = ""
    updated_ms: int = 0


# ---------------------------------------------------------------- ids


def make_id(prefix: str, now_ms: int, entropy: str) -> str:
    """Ids sort by creation time as strings, so the feed index can page by id alone."""
    if len(entropy) != 8:
        raise ValueError("entropy must be 8 hex characters")
    return f"{prefix}{now_ms:013d}{entropy}"


def created_ms(item_id: str) -> int:
    """When a post, comment or feedback was written, read from its id (see make_id)."""
    return int(item_id[1:14])


def id_floor(prefix: str, ms: int) -> str:
    """The smallest id of that kind written at `ms`: every id below it is older."""
    return f"{prefix}{ms:013d}"


def check_id(field_name: str, value: str, limits: Limits, required: bool = True) -> str:
    """Directory, department, feature, survey and session ids: short, printable, no spaces."""
    value = value.strip()
    if not value:
        if required:
            raise InvalidArgument(field_name, "must not be empty")
        return ""
    if len(value) > limits.max_id_chars:
        raise InvalidArgument(field_name, f"is {len(value)} characters long; at most {limits.max_id_chars} are allowed")
    if not _ID.match(value):
        raise InvalidArgument(
            field_name,
            f"'{value}' may only contain letters, digits and . _ : @ / - and must start with one of the first two",
        )
    return value


def check_post_id(field_name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(field_name, "must not be empty")
    if not _POST_ID.match(value):
        raise NotFound(f"{field_name}: there is no post with id '{value[:80]}'")
    return value


def check_comment_id(field_name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(field_name, "must not be empty")
    if not _COMMENT_ID.match(value):
        raise NotFound(f"{field_name}: there is no answer with id '{value[:80]}'")
    return value


# ---------------------------------------------------------------- text


def check_text(field_name: str, value: str, max_chars: int, required: bool) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidArgument(field_name, "must not be empty")
    if len(value) > max_chars:
        raise InvalidArgument(field_name, f"is {len(value)} characters long; at most {max_chars} are allowed")
    return value


def check_name(field_name: str, value: str, limits: Limits) -> str:
    """A person's display name: one line of text (the engagement worker dead-letters control characters)."""
    value = check_text(field_name, value, limits.max_title_chars, required=True)
    if _CONTROL.search(value):
        raise InvalidArgument(field_name, "must be one line of text without control characters")
    return value


def check_tags(values: Sequence[str], limits: Limits, field_name: str = "tags") -> tuple[str, ...]:
    """Tags are case-insensitive words; duplicates are dropped, order is kept."""
    tags: list[str] = []
    for i, raw in enumerate(values):
        tag = raw.strip().lstrip("#").lower()
        if not tag:
            raise InvalidArgument(f"{field_name}[{i}]", "must not be empty")
        if len(tag) > limits.max_tag_chars:
            raise InvalidArgument(
                f"{field_name}[{i}]", f"is {len(tag)} characters long; at most {limits.max_tag_chars} are allowed"
            )
        if not _TAG.match(tag):
            raise InvalidArgument(f"{field_name}[{i}]", f"'{tag}' must be one word (letters, digits, . + # -)")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > limits.max_tags:
        raise InvalidArgument(field_name, f"has {len(tags)} tags; at most {limits.max_tags} are allowed")
    return tuple(tags)


@dataclass(frozen=True)
class PostDraft:
    title: str
    body: str
    tags: tuple[str, ...]
    target_department_id: str


def check_post_draft(
    kind: int, title: str, body: str, tags: Sequence[str], target_department_id: str, limits: Limits
) -> PostDraft:
    """A question needs a title (the question itself); a post's title is optional. Both need a body."""
    return PostDraft(
        title=check_text("title", title, limits.max_title_chars, required=kind == ev.POST_KIND_QUESTION),
        body=check_text("body", body, limits.max_body_chars, required=True),
        tags=check_tags(tags, limits),
        target_department_id=check_id("target_department_id", target_department_id, limits, required=False),
    )


def check_comment_body(body: str, limits: Limits) -> str:
    return check_text("body", body, limits.max_comment_chars, required=True)


def check_reaction(kind: int, field_name: str = "reaction") -> str:
    """Returns the reaction's name (the key of Post.reactions)."""
    if kind not in REACTION_NAMES:
        allowed = ", ".join(f"REACTION_KIND_{n}" for n in REACTION_NAMES.values())
        raise InvalidArgument(field_name, f"choose one of {allowed}")
    return REACTION_NAMES[kind]


def check_page(page_size: int, page_token: str, limits: Limits) -> tuple[int, str]:
    """Returns the page size to use and the post id to continue after ('' for the first page)."""
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    if page_size > limits.page_size_max:
        raise InvalidArgument("page_size", f"is {page_size}; at most {limits.page_size_max} posts fit on a page")
    size = page_size or limits.page_size_default
    if not page_token:
        return size, ""
    try:
        after = base64.urlsafe_b64decode(page_token.encode() + b"==").decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        after = ""
    if not _POST_ID.match(after):
        raise InvalidArgument("page_token", "is not a token this service issued; pass next_page_token unchanged")
    return size, after


def page_token_after(post_id: str) -> str:
    return base64.urlsafe_b64encode(post_id.encode()).decode().rstrip("=")


# ---------------------------------------------------------------- who may do what


def check_erasure(employee_id: str, reason: str, limits: Limits) -> tuple[str, str]:
    """HR names the person to erase and says why (the reason goes to the audit)."""
    return (
        check_id("employee_id", employee_id, limits),
        check_text("reason", reason, limits.max_about_chars, required=True),
    )


def require_registered(employee: Employee | None, subject: str) -> Employee:
    """Writes need the actor's department from the directory, so the actor must be in it."""
    if employee is None:
        raise FailedPrecondition(
            f"employee '{subject}' is not in the directory yet; ask comms/HR to import the directory first"
        )
    return employee


def require_post(post: Post | None, post_id: str, field_name: str = "post_id") -> Post:
    if post is None:
        raise NotFound(f"{field_name}: there is no post with id '{post_id}'")
    return post


def ensure_can_edit(post: Post, actor: str) -> None:
    if post.author_id != actor:
        raise PermissionDenied("only the author may edit a post")


def ensure_can_delete(post: Post, principal: Principal) -> None:
    """Authors delete their own posts; the programme owner (comms) may remove any post (moderation)."""
    if post.author_id != principal.subject and not principal.has(Role.PROGRAMME_OWNER):
        raise PermissionDenied("only the author or someone with the programme_owner role may delete a post")


def ensure_can_react(author_id: str, actor: str, field_name: str = "post_id") -> None:
    if author_id == actor:
        raise InvalidArgument(field_name, "you cannot react to your own post")


def ensure_not_own_answer(author_id: str, actor: str, field_name: str = "answer_id") -> None:
    if author_id == actor:
        raise InvalidArgument(field_name, "you cannot accept your own answer")


def ensure_question(post: Post, field_name: str = "question_id") -> None:
    if not post.is_question:
        raise InvalidArgument(field_name, f"post '{post.post_id}' is not a question; answers belong to questions")


def ensure_can_accept(question: Post, answer: Comment | None, answer_id: str, actor: str) -> bool:
    """Checks an acceptance; returns False when this answer is already the accepted one (a no-op)."""
    ensure_question(question)
    if question.author_id != actor:
        raise InvalidArgument("question_id", "only the person who asked this question may accept an answer to it")
    if answer is None or answer.post_id != question.post_id or not answer.is_answer:
        raise InvalidArgument("answer_id", f"'{answer_id}' is not an answer to question '{question.post_id}'")
    ensure_not_own_answer(answer.author_id, actor)
    if question.accepted_answer_id == answer.comment_id:
        return False
    if question.accepted_answer_id:
        raise FailedPrecondition(f"question '{question.post_id}' already has an accepted answer")
    return True


# ---------------------------------------------------------------- profile


def check_profile(
    job_title: str,
    location: str,
    about: str,
    skills: Sequence[str],
    photo_url: str,
    phone: str,
    limits: Limits,
) -> Profile:
    photo = check_text("photo_url", photo_url, limits.max_url_chars, required=False)
    if photo and not _URL.match(photo):
        raise InvalidArgument("photo_url", "must be an http:// or https:// address")
    tel = check_text("phone", phone, 40, required=False)
    if tel and not _PHONE.match(tel):
        raise InvalidArgument("phone", "may only contain digits, spaces, + ( ) / . and -")
    cleaned: list[str] = []
    for i, raw in enumerate(skills):
        skill = check_text(f"skills[{i}]", raw, limits.max_tag_chars, required=True)
        if skill.lower() not in (s.lower() for s in cleaned):
            cleaned.append(skill)
    if len(cleaned) > limits.max_skills:
        raise InvalidArgument("skills", f"has {len(cleaned)} skills; at most {limits.max_skills} are allowed")
    return Profile(
        job_title=check_text("job_title", job_title, limits.max_short_text_chars, required=False),
        location=check_text("location", location, limits.max_short_text_chars, required=False),
        about=check_text("about", about, limits.max_about_chars, required=False),
        skills=tuple(cleaned),
        photo_url=photo,
        phone=tel,
    )


def completeness(profile: Profile) -> float:
    """Share of the six editable profile fields that are filled (skills: at least one), 0.0 to 1.0."""
    filled = sum(1 for name in PROFILE_FIELDS if getattr(profile, name))
    return round(filled / len(PROFILE_FIELDS), 4)


def changed_fields(before: Profile, after: Profile) -> list[str]:
    return [name for name in PROFILE_FIELDS if getattr(before, name) != getattr(after, name)]


def updated_profile(before: Profile, after: Profile, now_ms: int) -> tuple[Profile, list[str]]:
    """The stored profile and the fields that changed; no change means no update (and no event)."""
    changes = changed_fields(before, after)
    if not changes:
        return before, []
    return replace(after, updated_ms=now_ms), changes


# ---------------------------------------------------------------- directory


def check_employees(
    entries: Iterable[tuple[str, str, str, bool]], limits: Limits, field_name: str = "employees"
) -> list[Employee]:
    """Directory rows (id, display name, department, manager); an id may appear once per batch."""
    rows = list(entries)
    if not rows:
        raise InvalidArgument(field_name, "must list at least one employee")
    if len(rows) > limits.max_directory_batch:
        raise InvalidArgument(field_name, f"has {len(rows)} entries; at most {limits.max_directory_batch} per call")
    seen: set[str] = set()
    result = []
    for i, (employee_id, display_name, department_id, is_manager) in enumerate(rows):
        where = f"{field_name}[{i}]"
        emp_id = check_id(f"{where}.employee_id", employee_id, limits)
        if emp_id in seen:
            raise InvalidArgument(f"{where}.employee_id", f"'{emp_id}' appears more than once in this batch")
        seen.add(emp_id)
        result.append(
            Employee(
                employee_id=emp_id,
                display_name=check_name(f"{where}.display_name", display_name, limits),
                department_id=check_id(f"{where}.department_id", department_id, limits),
                is_manager=bool(is_manager),
            )
        )
    return result


# ---------------------------------------------------------------- simple signals


def check_feedback_kind(kind: int, field_name: str = "kind") -> int:
    if kind not in (ev.FEEDBACK_KIND_FEEDBACK, ev.FEEDBACK_KIND_SUGGESTION, ev.FEEDBACK_KIND_BUG_REPORT):
        raise InvalidArgument(
            field_name, "choose FEEDBACK_KIND_FEEDBACK, FEEDBACK_KIND_SUGGESTION or FEEDBACK_KIND_BUG_REPORT"
        )
    return kind


def check_feedback(kind: int, topic: str, body: str, limits: Limits) -> tuple[int, str, str]:
    return (
        check_feedback_kind(kind),
        check_text("topic", topic, limits.max_feedback_topic_chars, required=True),
        check_text("body", body, limits.max_comment_chars, required=True),
    )


def check_answered_questions(count: int, limits: Limits, field_name: str = "answered_questions") -> int:
    if count < 0 or count > limits.max_survey_questions:
        raise InvalidArgument(field_name, f"is {count}; it must be between 0 and {limits.max_survey_questions}")
    return count


def check_survey(survey_id: str, answered_questions: int, limits: Limits) -> str:
    sid = check_id("survey_id", survey_id, limits)
    check_answered_questions(answered_questions, limits)
    return sid


def check_session_kind(kind: int, field_name: str = "kind") -> int:
    if kind not in (ev.SESSION_KIND_WORKSHOP, ev.SESSION_KIND_INTERVIEW):
        raise InvalidArgument(field_name, "choose SESSION_KIND_WORKSHOP or SESSION_KIND_INTERVIEW")
    return kind


def check_session(session_id: str, kind: int, limits: Limits) -> str:
    sid = check_id("session_id", session_id, limits)
    check_session_kind(kind)
    return sid
