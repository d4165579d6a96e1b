"""`catalyst import` without a feed: the Viva Engage export and JSON Lines readers, and the import loop with an
in-memory feed that de-duplicates by source id as IngestInteractions does (the real feed: tests/integration/
feed/test_import_command.py)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from catalyst.feed.v1 import feed_pb2
from rich.console import Console

from services.cli.clients import CliError
from services.cli.history_import import REJECTED_EXIT, import_history
from services.cli.main import parser
from services.cli.sources import parse_time, read_jsonl, read_viva_engage

USERS = [
    {"id": "101", "name": "Ada", "email": "Ada@example.com", "job_title": "", "department": "Ops", "state": "active"},
    {"id": "102", "name": "Bo", "email": "bo@example.com", "job_title": "", "department": "IT", "state": "active"},
    {"id": "103", "name": "No Mail", "email": "", "job_title": "", "department": "IT", "state": "active"},
]
MESSAGE_COLUMNS = [
    "id", "replied_to_id", "thread_id", "conversation_id", "group_id", "group_name", "participants",
    "in_private_group", "in_private_conversation", "sender_id", "sender_type", "sender_name", "sender_email",
    "body", "api_url", "attachments", "deleted_by_id", "deleted_by_type", "created_at", "deleted_at",
    "message_type",  # optional: read where an export has it
]  # fmt: skip


def message(mid: str, thread: str, sender: str, at: str, body: str = "hello", **extra: str) -> dict[str, str]:
    row = dict.fromkeys(MESSAGE_COLUMNS, "")
    row.update(id=mid, thread_id=thread, sender_id=sender, created_at=at, body=body, in_private_conversation="false")
    row.update(extra)
    return row


def export(tmp_path: Path, messages: list[dict[str, str]]) -> Path:
    directory = tmp_path / "export"
    directory.mkdir()
    with (directory / "Users.csv").open("w", newline="", encoding="utf-8-sig") as out:
        writer = csv.DictWriter(out, fieldnames=list(USERS[0]))
        writer.writeheader()
        writer.writerows(USERS)
    with (directory / "Messages.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=MESSAGE_COLUMNS)
        writer.writeheader()
        writer.writerows(messages)
    return directory


MESSAGES = [
    message("2", "1", "102", "2024-03-01T10:00:00Z", body="a reply\nover two lines"),  # before its thread in the file
    message("1", "1", "101", "2024-03-01T09:00:00.250Z", body="x" * 40),
    message("3", "3", "101", "2024/03/02 08:00:00 +0000", message_type="question"),
    message("4", "3", "102", "2024-03-02 09:00:00"),
    message("5", "1", "102", "2024-03-03T09:00:00Z", deleted_at="2024-03-04T00:00:00Z"),
    message("6", "6", "102", "2024-03-03T09:00:00Z", in_private_conversation="true"),
    message("7", "1", "999", "2024-03-03T09:00:00Z"),
    message("8", "77", "101", "2024-03-03T09:00:00Z"),
    message("9", "1", "101", "yesterday"),
]


def test_the_viva_engage_export_maps_posts_replies_questions_and_answers(tmp_path: Path) -> None:
    history = read_viva_engage(export(tmp_path, MESSAGES))
    kinds = [(r.interaction.source_id, r.interaction.WhichOneof("kind")) for r in history.rows]
    assert kinds == [
        ("message:1", "post_created"),
        ("message:2", "comment_added"),
        ("message:3", "question_asked"),
        ("message:4", "answer_posted"),
    ]
    post, reply, question, answer = (r.interaction for r in history.rows)
    assert post.actor_id == "ada@example.com" and post.post_created.body_length == 40
    assert post.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2024, 3, 1, 9, 0, 0, 250_000, UTC)
    assert reply.comment_added.post_id == "1" and reply.comment_added.post_author_id == "ada@example.com"
    assert reply.actor_id == "bo@example.com"
    assert question.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2024, 3, 2, 8, tzinfo=UTC)
    assert answer.answer_posted.question_id == "3" and answer.answer_posted.question_author_id == "ada@example.com"
    assert history.skipped == {"deleted messages": 1, "private conversations": 1}
    rejected = {(r.file, r.line, r.field) for r in history.rejects}
    assert rejected == {
        ("Users.csv", 4, "email"),
        ("Messages.csv", 9, "sender_id"),  # the 7th row is on line 9: after the header and a two-line reply
        ("Messages.csv", 10, "thread_id"),
        ("Messages.csv", 11, "created_at"),
    }
    assert "yesterday" in next(r.reason for r in history.rejects if r.field == "created_at")


def test_the_export_can_key_employees_by_their_viva_engage_id(tmp_path: Path) -> None:
    history = read_viva_engage(export(tmp_path, MESSAGES[:2]), employee_key="id")
    assert [r.interaction.actor_id for r in history.rows] == ["yammer:101", "yammer:102"]


def test_a_directory_that_is_no_export_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no Users.csv"):
        read_viva_engage(tmp_path)
    (tmp_path / "Users.csv").write_text("id,name\n1,x\n")
    (tmp_path / "Messages.csv").write_text("id,body\n")
    with pytest.raises(ValueError, match="Users.csv: the header lacks email"):
        read_viva_engage(tmp_path)


def interaction(source_id: str, actor: str, at: str) -> dict[str, object]:
    return {"sourceId": source_id, "actorId": actor, "occurredAt": at, "postCreated": {"postId": source_id}}


def jsonl(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_json_lines_take_one_interaction_per_line_and_reject_bad_lines_by_field(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        [
            json.dumps(interaction("b", "e2", "2024-01-02T00:00:00Z")),
            json.dumps({"source_id": "a", "actor_id": "e1", "occurred_at": "2024-01-01T00:00:00Z",
                        "comment_added": {"comment_id": "c", "post_id": "b", "post_author_id": "e2"}}),
            "",
            "{not json",
            json.dumps({**interaction("c", "e1", "2024-01-03T00:00:00Z"), "occurredAt": "soon"}),
            json.dumps({"sourceId": "d", "actorId": "e1", "occurredAt": "2024-01-03T00:00:00Z"}),
            json.dumps({**interaction("e", "e1", "2024-01-03T00:00:00Z"), "colour": "red"}),
        ],
    )  # fmt: skip
    history = read_jsonl(path)
    assert [r.interaction.source_id for r in history.rows] == ["a", "b"]  # time order
    assert [(r.line, r.field) for r in history.rejects] == [(4, "line"), (5, "occurredAt"), (6, "kind"), (7, "colour")]


def test_export_times_are_iso_or_the_yammer_api_form_and_utc_without_a_zone() -> None:
    assert parse_time("2024-03-01T09:30:00+01:00") == datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    assert parse_time("2024/03/01 09:30:00 +0000") == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    assert parse_time("2024-03-01 09:30:00") == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


class Refusal(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class MemoryFeed:
    """IngestInteractions in memory: all or nothing per batch, an unknown actor refused naming its index, a
    known source id a duplicate; `fail_after` batches it raises once (an interrupted import)."""

    def __init__(self, directory: set[str], fail_after: int | None = None) -> None:
        self.directory = directory
        self.taken: dict[str, list[str]] = {}
        self.calls = 0
        self.fail_after = fail_after

    def __call__(
        self, source: str, items: Sequence[feed_pb2.ImportedInteraction]
    ) -> feed_pb2.IngestInteractionsResponse:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            self.fail_after = None
            raise KeyboardInterrupt
        for i, item in enumerate(items):
            if item.actor_id not in self.directory:
                raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"interactions[{i}].actor_id: employee "
                              f"'{item.actor_id}' is not in the directory; import the directory first")  # fmt: skip
        taken = self.taken.setdefault(source, [])
        new = [item.source_id for item in items if item.source_id not in taken]
        taken += new
        return feed_pb2.IngestInteractionsResponse(accepted=len(new), duplicates=len(items) - len(new))


def args_for(path: Path, state: Path, *extra: str) -> argparse.Namespace:
    return parser().parse_args(["import", str(path), "--state-dir", str(state), "--batch-size", "3", *extra])


def test_an_interrupted_import_resumes_after_what_the_feed_acknowledged_and_a_rerun_adds_nothing(
    tmp_path: Path,
) -> None:
    lines = [json.dumps(interaction(f"s{n:02d}", "e1" if n != 4 else "stranger", f"2024-01-{n + 1:02d}T00:00:00Z"))
             for n in range(10)]  # fmt: skip
    path, state = jsonl(tmp_path, lines), tmp_path / "state"
    feed = MemoryFeed({"e1"}, fail_after=3)  # the third call is the second batch sent again
    console = Console(file=io.StringIO())
    with pytest.raises(KeyboardInterrupt):
        import_history(args_for(path, state), feed, console)
    checkpoint = json.loads((state / "checkpoint.json").read_text())
    assert checkpoint["done"] == 6 and checkpoint["accepted"] == 5 and checkpoint["rejected"] == 1

    assert import_history(args_for(path, state), feed, console) == REJECTED_EXIT
    assert feed.taken["jsonl"] == [f"s{n:02d}" for n in range(10) if n != 4]  # each once, in order
    (reject,) = [json.loads(line) for line in (state / "rejects.jsonl").read_text().splitlines()]
    assert reject["file"] == "history.jsonl" and reject["line"] == 5 and reject["field"] == "actor_id"
    assert "not in the directory" in reject["reason"]

    calls = feed.calls
    assert import_history(args_for(path, state), feed, console) == REJECTED_EXIT  # done: nothing sent
    assert feed.calls == calls
    assert import_history(args_for(path, state, "--restart"), feed, console) == REJECTED_EXIT
    assert feed.taken["jsonl"] == [f"s{n:02d}" for n in range(10) if n != 4]  # everything a duplicate
    assert len((state / "rejects.jsonl").read_text().splitlines()) == 1


def test_a_checkpoint_of_other_files_is_not_used(tmp_path: Path) -> None:
    path, state = jsonl(tmp_path, [json.dumps(interaction("a", "e1", "2024-01-01T00:00:00Z"))]), tmp_path / "s"
    console = Console(file=io.StringIO())
    assert import_history(args_for(path, state), MemoryFeed({"e1"}), console) == 0
    path.write_text(path.read_text() + json.dumps(interaction("b", "e1", "2024-01-02T00:00:00Z")) + "\n")
    with pytest.raises(CliError, match="other input files"):
        import_history(args_for(path, state), MemoryFeed({"e1"}), console)


def test_a_refusal_that_names_no_row_stops_the_import(tmp_path: Path) -> None:
    path, state = jsonl(tmp_path, [json.dumps(interaction("a", "e1", "2024-01-01T00:00:00Z"))]), tmp_path / "s"

    def refuse(source: str, items: Sequence[feed_pb2.ImportedInteraction]) -> feed_pb2.IngestInteractionsResponse:
        raise Refusal(grpc.StatusCode.PERMISSION_DENIED, "IngestInteractions needs the role service")

    console = Console(file=io.StringIO())
    with pytest.raises(CliError, match="PERMISSION_DENIED"):
        import_history(args_for(path, state), refuse, console)
    assert not (state / "checkpoint.json").exists()  # nothing acknowledged: the next run starts at the top
