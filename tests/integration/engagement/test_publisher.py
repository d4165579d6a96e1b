"""The publisher (`python -m services.engagement.publisher`) with the real worker, broker and Redis: one
ScoreChanged per dirty employee with the model's figures, a killed publisher's unfinished chunk published by
the next one, and nothing but a tombstone, last, for a forgotten employee."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2
from prometheus_client import CollectorRegistry

from services.engagement.adapters.redis_store import DIRTY, TAKING, RedisStore, leaderboard, state_key
from services.engagement.adapters.retrying import Retrying
from services.engagement.model.state import OPT_OUT
from services.engagement.publisher.publisher import Publisher, PublisherMetrics
from services.engagement.publisher.settings import PublisherSettings
from services.engagement.worker.handler import Record, plan
from tests.integration.engagement.harness import (
    MODEL,
    Flat,
    PublisherProcess,
    WorkerProcess,
    as_of_day,
    expected,
    produce,
    read_all,
    topic_records,
    wait_committed,
    wait_published,
    wait_until,
)
from tests.policies import ranking_policy
from tests.unit.engagement.builders import DAY, event, post, react
from tests.unit.engagement.fakes import MARKER_TTL, PSEUDONYM_KEY

SCORE_CHANGES = "catalyst_engagement_publisher_score_changes_total"
ROUNDS = "catalyst_engagement_publisher_round_seconds_count"


def activity(prefix: str, count: int) -> list[envelope_pb2.Envelope]:
    """Registered employees who each post, the next one reacting: figures that differ between employees."""
    t = (int(time.time()) // DAY) * DAY - 3600
    people = [f"{prefix}-{n}" for n in range(count)]
    events = [event("EmployeeRegistered", p, t - DAY, "d1", display_name=p) for p in people]
    events += [post(p, t + n) for n, p in enumerate(people)]
    return events + [react(people[(n + 1) % count], p, t + count + n) for n, p in enumerate(people)]


def score_changed(bootstrap: str, topic: str) -> list[envelope_pb2.Envelope]:
    return [envelope_pb2.Envelope.FromString(v) for _, v in read_all(bootstrap, topic) if v is not None]


def scored(
    common_env: dict[str, str], kafka_bootstrap: str, topic: str, tmp_path: Path, events: list[envelope_pb2.Envelope]
) -> tuple[int, dict[str, Flat]]:
    """The events applied by a worker that then stops (every employee marked dirty once before publishing):
    the day the figures are as of, and the expected figures per employee."""
    produce(kafka_bootstrap, topic, events)
    worker = WorkerProcess(common_env, tmp_path).start()
    try:
        wait_committed(worker, kafka_bootstrap, topic)
    finally:
        worker.stop()
    as_of = as_of_day(events)
    return as_of, expected(kafka_bootstrap, topic, as_of)


def test_one_score_changed_per_dirty_employee_with_the_models_figures(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    as_of, want = scored(common_env, kafka_bootstrap, topics["interactions"], tmp_path, activity("a", 12))
    publisher = PublisherProcess(common_env, tmp_path).start()
    try:
        wait_published(kafka_bootstrap, topics["engagement"], want, as_of)
        rounds = publisher.metric(ROUNDS)
        wait_until(lambda: publisher.metric(ROUNDS) >= rounds + 2, 30, "two more publishing rounds")
        assert publisher.metric(SCORE_CHANGES) == len(want)
    finally:
        assert publisher.stop() == 0, publisher.log_tail()
    published = score_changed(kafka_bootstrap, topics["engagement"])
    assert sorted(env.employee_id for env in published) == sorted(want)  # once each: coalesced per round
    for env in published:
        assert env.type == "catalyst.events.v1.ScoreChanged" and env.producer == "engagement"
        assert env.score_changed.department_id == "d1" and not env.score_changed.ranking_opt_out
        assert env.event_id == f"engagement:{env.employee_id}:{env.score_changed.version}"
    client = redis.Redis.from_url(redis_url)
    assert list(client.scan_iter(match=leaderboard("*"))) == []  # the default policy has no rankings
    assert client.zcard(DIRTY) == client.zcard(TAKING) == 0


def test_under_a_ranking_policy_the_boards_hold_those_who_opted_in(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(state_key("r-0"), OPT_OUT, "0")  # what SetRankingPreference(opt_out=False) writes
    client.hset(state_key("r-1"), OPT_OUT, "1")
    as_of, want = scored(common_env, kafka_bootstrap, topics["interactions"], tmp_path, activity("r", 6))
    env = {"CATALYST_POLICY_FILE": str(ranking_policy(tmp_path))}
    publisher = PublisherProcess(common_env, tmp_path, **env).start()
    try:
        wait_published(kafka_bootstrap, topics["engagement"], want, as_of)
    finally:
        assert publisher.stop() == 0, publisher.log_tail()
    board = {e.decode(): s for e, s in client.zrevrange(leaderboard("30d"), 0, -1, withscores=True)}
    assert board == pytest.approx({"r-0": want["r-0"]["30d total"]})


def test_a_killed_publisher_leaves_its_chunk_to_the_next_one(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    """The first publisher sends to a topic that does not exist (no auto-creation): the broker never
    acknowledges, so it is killed holding its chunk in the taking set, as if it died mid-chunk."""
    events = activity("k", 12)
    topic = topics["interactions"]
    produce(kafka_bootstrap, topic, events)
    worker = WorkerProcess(common_env, tmp_path).start()
    try:
        wait_committed(worker, kafka_bootstrap, topic)
    finally:
        worker.stop()
    client = redis.Redis.from_url(redis_url)
    stuck = PublisherProcess(
        common_env,
        tmp_path,
        CATALYST_PUBLISHER_CHUNK="5",
        CATALYST_TOPIC_ENGAGEMENT=f"{topics['engagement']}.missing",
    ).start()
    try:
        wait_until(lambda: client.zcard(TAKING) == 5, 60, "the publisher to take a chunk")
    finally:
        stuck.kill()
    chunk = {e.decode() for e in client.zrange(TAKING, 0, -1)}
    assert not chunk & {e.decode() for e in client.zrange(DIRTY, 0, -1)}  # taken: only the taking set has them

    as_of = as_of_day(events)
    want = expected(kafka_bootstrap, topic, as_of)
    assert chunk < set(want)
    publisher = PublisherProcess(common_env, tmp_path, CATALYST_PUBLISHER_CHUNK="5").start()
    try:
        wait_published(kafka_bootstrap, topics["engagement"], want, as_of)
    finally:
        publisher.stop()
    assert client.zcard(TAKING) == client.zcard(DIRTY) == 0
    assert sorted(env.employee_id for env in score_changed(kafka_bootstrap, topics["engagement"])) == sorted(want)


def test_a_forgotten_employee_is_not_published_again_and_ends_with_a_tombstone(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    topic, engagement = topics["interactions"], topics["engagement"]
    t = (int(time.time()) // DAY) * DAY - 7200
    before = [post("a", t), post("b", t + 1), react("a", "b", t + 2), react("b", "a", t + 3)]
    produce(kafka_bootstrap, topic, before)
    worker = WorkerProcess(common_env, tmp_path).start()
    publisher = PublisherProcess(common_env, tmp_path).start()
    try:
        wait_committed(worker, kafka_bootstrap, topic)
        as_of = as_of_day(before)
        wait_published(kafka_bootstrap, engagement, expected(kafka_bootstrap, topic, as_of), as_of)
        produce(kafka_bootstrap, topic, [event("EmployeeForgotten", "b", t + 10)])
        wait_committed(worker, kafka_bootstrap, topic)
        after = [react("a", "b", t + 20), post("b", t + 21), post("a", t + 22)]  # b's ops are refused now
        produce(kafka_bootstrap, topic, after)
        wait_committed(worker, kafka_bootstrap, topic)
        want = expected(kafka_bootstrap, topic, as_of_day(after))
        assert sorted(want) == ["a"]
        wait_published(kafka_bootstrap, engagement, want, as_of_day(after))  # a round after the erasure's
    finally:
        worker.stop()
        publisher.stop()
    records_of_b = [r.value for r in topic_records(kafka_bootstrap, engagement) if r.key == b"b"]
    assert len(records_of_b) >= 2 and records_of_b[-1] is None  # compaction keeps the tombstone
    assert None not in records_of_b[:-1]  # b's later dirty marks published nothing after it


async def test_an_erasure_during_a_chunk_in_flight_is_followed_by_a_tombstone(redis_url: str) -> None:
    """The worker forgets b while the publisher's ScoreChanged of b is on its way to the broker: b's figures
    would outlive the worker's tombstone, so the publisher sends another one after them."""
    client = aioredis.Redis.from_url(redis_url)
    store = RedisStore(client, MODEL.keep_days, PSEUDONYM_KEY, MARKER_TTL)
    t = (int(time.time()) // DAY) * DAY - 3600
    events = [post("a", t), post("b", t + 1)]
    records = [Record(0, n, env.employee_id.encode(), env.SerializeToString(), 0) for n, env in enumerate(events)]
    work = plan(records, int(time.time() * 1000), 0)
    await store.apply(work.writes, work.activity, work.newest_ms)
    sent: list[tuple[bytes, bytes | None]] = []

    async def broadcast(topic: str, key: bytes, value: bytes) -> None:
        raise AssertionError("no day ended: there is no distribution to send")

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        if not sent:
            await store.forget("b", MODEL.leaderboards.windows)  # lands while the first chunk is in flight
        sent.extend(messages)

    metrics = PublisherMetrics(CollectorRegistry())
    publisher = Publisher(store, publish, broadcast, MODEL, PublisherSettings(), metrics, Retrying(metrics, 0.1))
    try:
        assert await publisher.run_once() == 2
        assert await publisher.run_once() == 0
    finally:
        await store.batch.close()
        await client.aclose()
    assert [(key, value is None) for key, value in sent] == [(b"a", False), (b"b", False), (b"b", True)]


async def test_boards_of_a_window_the_scoring_file_no_longer_ranks_go_at_start(redis_url: str, tmp_path: Path) -> None:
    """A deployment that ranked 7-day scores before keeps no 7-day board once the publisher starts."""
    client = aioredis.Redis.from_url(redis_url)
    store = RedisStore(client, MODEL.keep_days, PSEUDONYM_KEY, MARKER_TTL)
    await client.zadd(leaderboard("7d"), {"a": 3.0})
    await client.zadd(leaderboard("7d", "eng"), {"a": 3.0})
    await client.zadd(leaderboard("30d"), {"a": 9.0})

    async def nowhere(topic: str, messages: object) -> None:
        raise AssertionError("nothing is published at start")

    async def broadcast(topic: str, key: bytes, value: bytes) -> None:
        raise AssertionError("nothing is published at start")

    metrics = PublisherMetrics(CollectorRegistry())
    settings = PublisherSettings(policy_file=ranking_policy(tmp_path))
    try:
        await Publisher(store, nowhere, broadcast, MODEL, settings, metrics, Retrying(metrics, 0.1)).start()
        assert await client.exists(leaderboard("7d"), leaderboard("7d", "eng")) == 0
        assert await client.zscore(leaderboard("30d"), "a") == 9.0
    finally:
        await store.batch.close()
        await client.aclose()
