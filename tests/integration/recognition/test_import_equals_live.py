"""A history imported in one go gives the badges the same history gives day by day, against the real services
(issue 26 item 4, decision 0021): `catalyst import` into a real feed, its relay onto Kafka, the engagement
worker and publisher as processes, recognition with its consumer and Redis store. Two such systems side by
side, each with its own topics and Redis database: one takes the whole history in one import, the other one
day's history at a time, waiting each time until recognition has evaluated it. Both must leave the holdings
(held or not, grants, the days of the last grant and revocation) that the figures of each day's end give.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis
import redis.asyncio as aioredis
import yaml
from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from google.protobuf import json_format
from rich.console import Console

from services.cli.history_import import import_history
from services.cli.main import parser
from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.kafka_admin import delete_topics, ensure_topics
from services.common.topics import TopicSpec, load_topics
from services.engagement.adapters.redis_store import RedisStore
from services.feed.store import Keys
from services.recognition.rules import load_rules
from tests.conftest import RedisServer
from tests.integration.engagement.harness import MODEL, PublisherProcess, WorkerProcess, wait_committed
from tests.integration.feed.harness import Feed, feed_settings, start_feed, stop_feed
from tests.integration.recognition.harness import Harness, eventually, settings_for, start_harness, stop_harness
from tests.unit.engagement.builders import DAY
from tests.unit.engagement.fakes import MARKER_TTL, PSEUDONYM_KEY
from tests.unit.recognition.test_import_equals_live import PEOPLE, RULES, history, reference, summary

pytestmark = pytest.mark.integration
SEED = 2
OUTBOX_PARTITIONS = 4


def imported(events: list[envelope_pb2.Envelope]) -> list[feed_pb2.ImportedInteraction]:
    """The history as an intranet would hand it over: original ids and times."""
    out = []
    for n, env in enumerate(events):
        item = feed_pb2.ImportedInteraction(source_id=f"h{n}", actor_id=env.employee_id)
        item.occurred_at.CopyFrom(env.occurred_at)
        if env.WhichOneof("payload") == "post_created":
            item.post_created.CopyFrom(ev.PostCreated(post_id=f"p{n}", kind=ev.POST_KIND_POST))
        else:
            author = env.reaction_added.post_author_id
            item.reaction_added.CopyFrom(
                ev.ReactionAdded(post_id=f"of-{author}", post_author_id=author, reaction=ev.REACTION_KIND_LIKE)
            )
        out.append(item)
    return out


def jsonl(path: Path, items: list[feed_pb2.ImportedInteraction]) -> Path:
    path.write_text("".join(json_format.MessageToJson(i, indent=None) + "\n" for i in items), encoding="utf-8")
    return path


@dataclass
class System:
    """One Catalyst: feed, engagement worker and publisher, recognition, on topics and a Redis of its own."""

    env: dict[str, str]
    feed: Feed
    worker: WorkerProcess
    publisher: PublisherProcess
    rec: Harness
    redis: aioredis.Redis
    tmp: Path

    async def import_file(self, path: Path) -> int:
        """`catalyst import` of one JSON Lines file (a state directory per file)."""
        args = parser().parse_args(["import", str(path), "--state-dir", str(self.tmp / f"state-{path.stem}")])
        token = self.feed.token("history-import", Role.SERVICE, ttl=3600)

        def run() -> int:
            with grpc.insecure_channel(f"127.0.0.1:{self.feed.service.port}") as channel:
                stub = feed_pb2_grpc.FeedServiceStub(channel)

                def send(source: str, items: list) -> feed_pb2.IngestInteractionsResponse:
                    request = feed_pb2.IngestInteractionsRequest(source=source, interactions=items)
                    return stub.IngestInteractions(request, metadata=bearer(token), timeout=60)

                return import_history(args, send, Console(file=io.StringIO()))

        return await asyncio.to_thread(run)

    async def caught_up(self) -> None:
        """Every imported interaction on Kafka, applied by the worker, every day up to the newest published by
        the publisher, and every ScoreChanged evaluated by recognition."""

        async def outbox() -> int:
            return sum([await self.redis.xlen(f"{Keys.OUTBOX_PREFIX}{n}") for n in range(OUTBOX_PARTITIONS)])

        await eventually(outbox, lambda depth: depth == 0, timeout=60)
        topic = self.env["CATALYST_TOPIC_INTERACTIONS"]
        await asyncio.to_thread(wait_committed, self.worker, self.env["CATALYST_KAFKA_BOOTSTRAP"], topic)

        store = RedisStore(self.redis, MODEL.keep_days, PSEUDONYM_KEY, MARKER_TTL)
        await eventually(store.caught_up, bool, timeout=120)
        await self.rec.settled()

    async def outcome(self) -> dict:
        records = {p: await self.rec.store.load(p) for p in PEOPLE}
        return {p: summary(r.holdings) for p, r in records.items() if summary(r.holdings)}


async def start_system(env: dict[str, str], tmp: Path, rules: Path) -> System:
    feed = await start_feed(
        feed_settings(
            env["CATALYST_REDIS_URL"],
            env["CATALYST_KAFKA_BOOTSTRAP"],
            env["CATALYST_TOPIC_INTERACTIONS"],
            outbox_partitions=OUTBOX_PARTITIONS,
        )
    )
    await feed.directory(*((p, p, "d1") for p in PEOPLE))
    worker = WorkerProcess(env, tmp).start()
    publisher = PublisherProcess(env, tmp).start()
    rec = await start_harness(env, settings_for(env, badge_rules_file=rules))
    return System(env, feed, worker, publisher, rec, aioredis.Redis.from_url(env["CATALYST_REDIS_URL"]), tmp)


async def stop_system(system: System) -> None:
    await stop_harness(system.rec)
    system.publisher.stop()
    system.worker.stop()
    await stop_feed(system.feed)
    await system.redis.aclose()


@pytest.fixture
def second_env(kafka_bootstrap: str, redis_server: RedisServer, common_env: dict[str, str]) -> Iterator[dict]:
    """Topics and a Redis database of a second system."""
    suffix = uuid.uuid4().hex[:8]
    specs = [TopicSpec(s.key, f"{s.name}.test-{suffix}", s.partitions, s.config) for s in load_topics().values()]
    ensure_topics(kafka_bootstrap, specs)
    url = redis_server.url(1)
    redis.Redis.from_url(url).flushdb()
    names = {s.key: s.name for s in specs}
    yield {
        **common_env,
        "CATALYST_REDIS_URL": url,
        **{f"CATALYST_TOPIC_{key.upper()}": name for key, name in names.items()},
    }
    delete_topics(kafka_bootstrap, [s.name for s in specs])


async def test_a_history_imported_in_one_go_gives_the_badges_it_gives_day_by_day(
    common_env: dict[str, str], second_env: dict[str, str], tmp_path: Path
) -> None:
    rules_path = tmp_path / "badges.yaml"
    rules_path.write_text(yaml.safe_dump(RULES))
    events = history(SEED)
    items = imported(events)
    want = await asyncio.to_thread(reference, load_rules(rules_path), events)  # it runs a loop of its own
    (tmp_path / "one").mkdir()
    (tmp_path / "daily").mkdir()
    at_once = await start_system(common_env, tmp_path / "one", rules_path)
    daily = await start_system(second_env, tmp_path / "daily", rules_path)
    try:
        assert await at_once.import_file(jsonl(tmp_path / "one" / "history.jsonl", items)) == 0
        days = sorted({i.occurred_at.seconds // DAY for i in items})
        for day in days:
            today = [i for i in items if i.occurred_at.seconds // DAY == day]
            assert await daily.import_file(jsonl(tmp_path / "daily" / f"day-{day}.jsonl", today)) == 0
            await daily.caught_up()
        await at_once.caught_up()

        one_go, day_by_day = await at_once.outcome(), await daily.outcome()
        assert one_go == day_by_day == want
        granted = sum(grants for person in one_go.values() for (_, grants, _, _) in person.values())
        revoked = sum(1 for person in one_go.values() for (_, _, _, gone) in person.values() if gone)
        assert granted >= 3 and revoked >= 1, one_go  # the history earns, loses and earns again
    finally:
        await stop_system(daily)
        await stop_system(at_once)
