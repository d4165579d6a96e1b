"""History files `catalyst import` reads, turned into ImportedInteraction messages (pure: files in, messages
and rejected rows out; docs/import.md states every field).

Two formats: Catalyst's own JSON Lines (one ImportedInteraction per line, protobuf's JSON mapping) and the
Viva Engage (Yammer) network data export (Users.csv and Messages.csv). Every row either becomes an interaction,
is skipped for a stated reason (deleted, private, system messages: counted), or is rejected naming its file,
line and field: nothing is dropped without a trace. Interactions come out in time order with stable source
ids, so a re-run sends the same ids and the feed's de-duplication drops what it already took.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2
from google.protobuf import json_format

USERS, MESSAGES = "Users.csv", "Messages.csv"
EMPLOYEE_KEYS = ("email", "id")  # which Users.csv column is the Catalyst employee id
_TRUE = {"true", "1", "yes"}
_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S %Z", "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class Row:
    """One interaction and where it came from. A history is held whole (it is sent in time order), so a row
    keeps the interaction serialized, a fraction of the message object's memory, and its time to sort by."""

    file: str
    line: int
    at: tuple[int, int]  # occurred_at (seconds, nanos)
    data: bytes

    @classmethod
    def of(cls, file: str, line: int, interaction: feed_pb2.ImportedInteraction) -> Row:
        at = (interaction.occurred_at.seconds, interaction.occurred_at.nanos)
        return cls(file, line, at, interaction.SerializeToString())

    @property
    def interaction(self) -> feed_pb2.ImportedInteraction:
        return feed_pb2.ImportedInteraction.FromString(self.data)


@dataclass(frozen=True)
class Reject:
    """A row that cannot be imported, and why, in words that name the field."""

    file: str
    line: int
    field: str
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class History:
    """What a source gave: interactions in time order, rejected rows, and rows skipped by reason."""

    rows: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def ordered(self) -> History:
        """Time order (then file order): the order events happened in, which the pipeline keeps."""
        self.rows.sort(key=lambda r: r.at)
        return self


def parse_time(text: str) -> datetime:
    """An export's time: ISO 8601 (`2024-03-01T09:30:00Z`, with or without an offset) or the Yammer API's
    `2024/03/01 09:30:00 +0000`; a time without a zone is UTC."""
    value = text.strip()
    if not value:
        raise ValueError("is empty")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for pattern in _TIME_FORMATS:
            try:
                parsed = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"'{value[:40]}' is not a time (use ISO 8601, e.g. 2024-03-01T09:30:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------- Catalyst JSON Lines


def read_jsonl(path: Path) -> History:
    """One ImportedInteraction per line in protobuf's JSON mapping; blank lines are ignored."""
    history = History()
    name = path.name
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                history.rejects.append(Reject(name, number, "line", f"not JSON: {exc.msg} (column {exc.colno})"))
                continue
            if not isinstance(data, dict):
                history.rejects.append(Reject(name, number, "line", "must be a JSON object (one interaction)"))
                continue
            item = feed_pb2.ImportedInteraction()
            try:
                json_format.ParseDict(data, item)
            except json_format.ParseError as exc:
                history.rejects.append(Reject(name, number, _field_of(str(exc)), str(exc)))
                continue
            missing = [f for f in ("source_id", "actor_id") if not getattr(item, f)]
            if not item.HasField("occurred_at"):
                missing.append("occurred_at")
            if item.WhichOneof("kind") is None:
                missing.append("kind")
            if missing:
                history.rejects.append(Reject(name, number, missing[0], f"missing {', '.join(missing)}"))
                continue
            history.rows.append(Row.of(name, number, item))
    return history.ordered()


def _field_of(message: str) -> str:
    """The field a protobuf JSON parse error names ("Failed to parse occurredAt field: ...")."""
    for marker in ("Failed to parse ", 'no field named "'):
        if marker in message:
            rest = message.split(marker, 1)[1]
            return rest.split(" ", 1)[0].strip('".') or "line"
    return "line"


# ---------------------------------------------------------------- Viva Engage (Yammer) network data export


@dataclass(frozen=True)
class _Message:
    line: int
    id: str
    thread_id: str
    sender: str
    at: datetime
    body_length: int
    question: bool


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows with the line each starts on (bodies may span lines); the export's UTF-8 byte order mark is read."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        start = 2
        for row in reader:
            yield start, {k: (v or "") for k, v in row.items() if k is not None}
            start = reader.line_num + 1


def _require(path: Path, columns: tuple[str, ...]) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path.name}: the header lacks {', '.join(missing)} (is this a Viva Engage network export?)")


def read_viva_engage(directory: Path, employee_key: str = "email") -> History:
    """Users.csv maps each Viva Engage user to a Catalyst employee id (its `email` or `id` column); Messages.csv
    gives thread starters (posts, or questions where `message_type` says so) and replies (comments, or answers
    in a question's thread). Deleted, private-conversation and system messages are skipped and counted."""
    users_path, messages_path = directory / USERS, directory / MESSAGES
    for path in (users_path, messages_path):
        if not path.is_file():
            raise ValueError(f"{directory}: no {path.name} (unzip the network data export into one directory)")
    _require(users_path, ("id", employee_key))
    _require(messages_path, ("id", "thread_id", "sender_id", "created_at", "body"))
    history = History()
    employees: dict[str, str] = {}
    for line, row in _csv_rows(users_path):
        user, employee = row["id"].strip(), row[employee_key].strip()
        if not user:
            history.rejects.append(Reject(USERS, line, "id", "is empty"))
        elif not employee:
            history.rejects.append(Reject(USERS, line, employee_key, f"is empty: user {user} has no employee id"))
        else:
            employees[user] = employee.lower() if employee_key == "email" else f"yammer:{employee}"
    messages: list[_Message] = []
    for line, row in _csv_rows(messages_path):
        skipped = _skip_reason(row)
        if skipped:
            history.skipped[skipped] += 1
            continue
        message = _message(line, row, employees, history)
        if message is not None:
            messages.append(message)
    starters = {m.id: m for m in messages if m.thread_id == m.id}
    for m in messages:
        item = feed_pb2.ImportedInteraction(source_id=f"message:{m.id}", actor_id=m.sender)
        item.occurred_at.FromDatetime(m.at)
        if m.thread_id == m.id:
            if m.question:
                item.question_asked.CopyFrom(ev.QuestionAsked(question_id=m.id, body_length=m.body_length))
            else:
                item.post_created.CopyFrom(
                    ev.PostCreated(post_id=m.id, kind=ev.POST_KIND_POST, body_length=m.body_length)
                )
        else:
            starter = starters.get(m.thread_id)
            if starter is None:
                reason = f"thread {m.thread_id} starts before the export's date range, or was deleted"
                history.rejects.append(Reject(MESSAGES, m.line, "thread_id", reason))
                continue
            if starter.question:
                item.answer_posted.CopyFrom(
                    ev.AnswerPosted(
                        answer_id=m.id,
                        question_id=starter.id,
                        question_author_id=starter.sender,
                        body_length=m.body_length,
                    )
                )
            else:
                item.comment_added.CopyFrom(
                    ev.CommentAdded(
                        comment_id=m.id, post_id=starter.id, post_author_id=starter.sender, body_length=m.body_length
                    )
                )
        history.rows.append(Row.of(MESSAGES, m.line, item))
    return history.ordered()


def _skip_reason(row: dict[str, str]) -> str:
    if row.get("deleted_at", "").strip():
        return "deleted messages"
    if row.get("in_private_conversation", "").strip().lower() in _TRUE:
        return "private conversations"
    if row.get("message_type", "").strip().lower() == "system":
        return "system messages"
    return ""


def _message(line: int, row: dict[str, str], employees: dict[str, str], history: History) -> _Message | None:
    def reject(column: str, reason: str) -> None:
        history.rejects.append(Reject(MESSAGES, line, column, reason))

    message, thread, sender = row["id"].strip(), row["thread_id"].strip(), row["sender_id"].strip()
    if not message:
        reject("id", "is empty")
        return None
    if not thread:
        reject("thread_id", "is empty")
        return None
    employee = employees.get(sender)
    if employee is None:
        reject("sender_id", f"user '{sender[:40]}' is not in {USERS}")
        return None
    try:
        at = parse_time(row["created_at"])
    except ValueError as exc:
        reject("created_at", str(exc))
        return None
    question = row.get("message_type", "").strip().lower() == "question"
    return _Message(line, message, thread, employee, at, len(row["body"]), question)
