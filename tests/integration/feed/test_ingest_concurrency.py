"""Concurrent IngestInteractions batches of one source: no conflicts, every interaction taken exactly once,
order per employee kept, and a directory change between a batch's read and its commit builds it again."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

import pytest
import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from redis import Redis as SyncRedis

from services.common.auth import Role
from services.common.errors import InvalidArgument
from services.feed import ingest
from services.feed.domain import Limits
from services.feed.events import ingest_event_id
from services.feed.ingest_store import IngestStore, IngestView
from services.feed.store import Keys
from tests.integration.feed.harness import Feed, read_topic

pytestmark = pytest.mark.integration

EMPLOYEES = [f"e-{i}" for i in range(12)]
T0 = 1_650_000_000


def history(prefix: str, count: int, employees: list[str]) -> list[pb.ImportedInteraction]:
    """Interactions in time order; comments leave the post author's department for the feed to fill."""
    items = []
    for i in range(count):
        actor, author = employees[i % len(employees)], employees[(i + 1) % len(employees)]
        item = pb.ImportedInteraction(source_id=f"{prefix}-{i}", actor_id=actor, occurred_at=Timestamp(seconds=T0 + i))
        if i % 2:
            item.comment_added.CopyFrom(ev.CommentAdded(comment_id=f"c-{i}", post_id="p-1", post_author_id=author))
        else:
            item.feature_tried.CopyFrom(ev.FeatureTried(feature_id=f"f-{i}"))
        items.append(item)
    return items


async def ingest_all(
    feed: Feed, source: str, batches: list[list[pb.ImportedInteraction]]
) -> list[pb.IngestInteractionsResponse]:
    """Sends every batch at once."""
    return await asyncio.gather(
        *(
            feed.call(
                "IngestInteractions",
                pb.IngestInteractionsRequest(source=source, interactions=b),
                "bridge",
                Role.SERVICE,
            )
            for b in batches
        )
    )


async def test_concurrent_overlapping_batches_take_each_interaction_exactly_once(
    feed: Feed, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    await feed.directory(*[(e, e.upper(), f"d{i % 3}") for i, e in enumerate(EMPLOYEES)])
    items = history("s", 1200, EMPLOYEES)
    # Windows of 200 starting every 100 (each id in two of them), plus all of it again in 6 batches,
    # sent at once in shuffled order.
    batches = [items[s : s + 200] for s in range(0, 1200, 100)] + [items[s : s + 200] for s in range(0, 1200, 200)]
    random.Random(7).shuffle(batches)
    responses = await ingest_all(feed, "legacy", batches)
    assert sum(r.accepted for r in responses) == 1200
    assert sum(r.duplicates for r in responses) == sum(len(b) for b in batches) - 1200

    # One batch raced by an exact copy of itself: one commit takes it all, the other none.
    solo = history("solo", 200, EMPLOYEES[:4])
    raced = await ingest_all(feed, "legacy", [solo, solo])
    assert sorted((r.accepted, r.duplicates) for r in raced) == [(0, 200), (200, 0)]

    records = [
        r
        for r in await read_topic(kafka_bootstrap, topics["interactions"], expected=len(EMPLOYEES) + 1400)
        if r.envelope.producer == "ingest:legacy"
    ]
    ids = [r.envelope.event_id for r in records]
    expected = {ingest_event_id("legacy", it.source_id) for it in items + solo}
    assert len(ids) == len(expected) == 1400 and set(ids) == expected, "an interaction was lost or published twice"
    departments = {e: f"d{i % 3}" for i, e in enumerate(EMPLOYEES)}
    for r in records:
        env = r.envelope
        assert r.key == env.employee_id and env.department_id == departments[env.employee_id]
        if env.HasField("comment_added"):
            assert env.comment_added.post_author_department_id == departments[env.comment_added.post_author_id]
    per_employee: dict[str, list[int]] = defaultdict(list)
    for r in records:
        if ingest_event_id("legacy", f"solo-{r.envelope.occurred_at.seconds - T0}") == r.envelope.event_id:
            per_employee[r.key].append(r.envelope.occurred_at.seconds)
    assert sum(map(len, per_employee.values())) == 200
    for emp, times in per_employee.items():
        assert times == sorted(times), f"order broken for {emp}"


def checked(source_id: str, actor: str, author: str) -> ingest.CheckedInteraction:
    item = pb.ImportedInteraction(
        source_id=source_id,
        actor_id=actor,
        occurred_at=Timestamp(seconds=T0),
        reaction_added=ev.ReactionAdded(post_id="p", post_author_id=author, reaction=ev.REACTION_KIND_LIKE),
    )
    return ingest.check_interaction(item, 0, int(time.time() * 1000), 0, Limits())


def _set_department(redis: SyncRedis, emp: str, dept: str) -> None:
    redis.hset(Keys.employee(emp), mapping={"display_name": emp, "department_id": dept, "is_manager": "0"})


async def _outbox(redis: aioredis.Redis, partitions: int) -> list[envelope_pb2.Envelope]:
    entries = []
    for p in range(partitions):
        entries += await redis.xrange(Keys.outbox(p), "-", "+")
    return [envelope_pb2.Envelope.FromString(fields[b"value"]) for _, fields in entries]


async def test_a_directory_change_between_read_and_commit_builds_the_batch_again(redis_url: str) -> None:
    """`build` runs between the read script and the commit script; a synchronous client writes the
    directory from inside it, as a concurrent UpsertEmployees or ForgetMe would."""
    redis, directory = aioredis.Redis.from_url(redis_url), SyncRedis.from_url(redis_url)
    try:
        _set_department(directory, "e-a", "sales")
        _set_department(directory, "e-b", "it")
        store = IngestStore(redis, partitions=4, max_retries=5)
        item = checked("1", "e-a", "e-b")
        seen: list[str] = []

        def build(view: IngestView) -> list[tuple[str, envelope_pb2.Envelope]]:
            seen.append(view.departments["e-b"])
            if len(seen) == 1:
                _set_department(directory, "e-b", "hr")
            return [(item.source_id, ingest.envelope_for("legacy", item, view.departments))]

        assert await store.ingest("legacy", ["1"], ingest.employees_needed([item]), build) == 1
        assert seen == ["it", "hr"]
        [env] = await _outbox(redis, 4)
        assert env.reaction_added.post_author_department_id == "hr" and env.department_id == "sales"

        # The actor is forgotten between read and commit: nothing is written, and the rebuild rejects it.
        gone = checked("2", "e-a", "e-b")
        calls = 0

        def build_forgotten(view: IngestView) -> list[tuple[str, envelope_pb2.Envelope]]:
            nonlocal calls
            calls += 1
            if calls == 1:
                directory.delete(Keys.employee("e-a"))
            return [(gone.source_id, ingest.envelope_for("legacy", gone, view.departments))]

        with pytest.raises(InvalidArgument) as exc:
            await store.ingest("legacy", ["2"], ingest.employees_needed([gone]), build_forgotten)
        assert exc.value.field == "interactions[0].actor_id" and calls == 2
        assert await redis.smembers(Keys.ingested("legacy")) == {b"1"}
        assert len(await _outbox(redis, 4)) == 1
    finally:
        await redis.aclose()
        directory.close()
