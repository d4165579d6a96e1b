"""`catalyst import` of a Viva Engage export into the real feed (gRPC socket, Redis, relay, Kafka): the
messages arrive as events with their original times and stable ids, rows the feed refuses (a sender outside
the directory) land in the reject file with their line, and a second run adds nothing."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import grpc
import pytest
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from rich.console import Console

from services.cli.history_import import REJECTED_EXIT, import_history
from services.cli.main import parser
from services.common.auth import Role
from services.common.grpc_client import bearer
from services.feed import events
from tests.integration.feed.harness import Feed, read_topic
from tests.unit.cli.test_import import MESSAGES, export

pytestmark = pytest.mark.integration


async def run_import(feed: Feed, *argv: str) -> tuple[int, str]:
    args = parser().parse_args(["import", *argv])
    token = feed.token("history-import", Role.SERVICE, ttl=600)
    out = io.StringIO()

    def run() -> int:
        with grpc.insecure_channel(f"127.0.0.1:{feed.service.port}") as channel:
            stub = feed_pb2_grpc.FeedServiceStub(channel)

            def send(source: str, items: list) -> feed_pb2.IngestInteractionsResponse:
                request = feed_pb2.IngestInteractionsRequest(source=source, interactions=items)
                return stub.IngestInteractions(request, metadata=bearer(token), timeout=30)

            return import_history(args, send, Console(file=out, width=200))

    return await asyncio.to_thread(run), out.getvalue()


async def test_a_viva_engage_export_arrives_once_with_its_times_and_refused_rows_are_named(
    feed: Feed, kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path
) -> None:
    await feed.directory(("ada@example.com", "Ada", "ops"))  # bo@example.com is in Users.csv, not the directory
    directory, state = export(tmp_path, MESSAGES), tmp_path / "state"

    code, said = await run_import(feed, str(directory), "--state-dir", str(state))
    assert code == REJECTED_EXIT and "2 new" in said, said
    records = await read_topic(kafka_bootstrap, topics["interactions"], expected=3)
    imported = [r.envelope for r in records if r.envelope.producer == "ingest:viva-engage"]
    assert sorted(e.WhichOneof("payload") for e in imported) == ["post_created", "question_asked"]
    post = next(e for e in imported if e.WhichOneof("payload") == "post_created")
    assert post.employee_id == "ada@example.com" and post.department_id == "ops"
    assert post.occurred_at.ToMilliseconds() == 1_709_283_600_250  # 2024-03-01T09:00:00.250Z
    assert post.event_id == events.ingest_event_id("viva-engage", "message:1")

    rejects = [json.loads(line) for line in (state / "rejects.jsonl").read_text().splitlines()]
    by_feed = sorted((r["line"], r["field"]) for r in rejects if r["reason"].startswith("the feed"))
    assert by_feed == [(2, "actor_id"), (6, "actor_id")]  # bo's reply and answer
    assert len(rejects) == 6  # and the four rows the reader refused

    again, said = await run_import(feed, str(directory), "--state-dir", str(state), "--restart")
    assert again == REJECTED_EXIT and "0 new, 2 already imported" in said, said
    assert len(await read_topic(kafka_bootstrap, topics["interactions"], expected=3)) == 3
