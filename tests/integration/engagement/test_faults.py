"""Backfill equals live, poison goes to the dead-letter topic, forgetting tombstones, Redis outages are retried."""

from __future__ import annotations

import time
from pathlib import Path

import redis
from catalyst.events.v1 import envelope_pb2

from services.engagement.store import gone_key, leaderboard, state_key
from tests.conftest import RedisServer
from tests.integration.engagement.harness import WorkerProcess, produce, produce_raw, read_all, wait_until
from tests.integration.engagement.test_worker import (
    as_of_day,
    expected,
    history,
    latest_scores,
    stored,
    wait_processed,
)
from tests.unit.engagement.builders import DAY, event, post, react


async def test_a_backfill_gives_the_same_figures_as_live_processing(
    common_env: dict[str, str],
    kafka_bootstrap: str,
    topics: dict[str, str],
    redis_url: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    events = history(seed=11, employees=40, days=200, per_day=40)  # months of history, some beyond 100 days
    topic = topics["interactions"]
    live = WorkerProcess(common_env, tmp_path, CATALYST_WORKER_BATCH_SIZE="100").start()
    try:
        chunk = len(events) // 8
        for start in range(0, len(events), chunk):
            produce(kafka_bootstrap, topic, events[start : start + chunk])
            time.sleep(0.5)
        wait_processed(live, kafka_bootstrap, topic, redis_url)
    finally:
        live.stop()

    backfill_url = redis_server.url(1)
    backfill = WorkerProcess(
        {**common_env, "CATALYST_REDIS_URL": backfill_url}, tmp_path, CATALYST_WORKER_BATCH_SIZE="5000"
    ).start()
    try:
        wait_processed(backfill, kafka_bootstrap, topic, backfill_url)
    finally:
        backfill.stop()

    as_of = as_of_day(events)
    want = expected(events, as_of)
    employees = sorted(want)
    live_figures = await stored(redis_url, topic, employees, as_of)
    assert live_figures == await stored(backfill_url, topic, employees, as_of)
    assert live_figures == want


async def test_poison_goes_to_the_dead_letter_topic_and_forgetting_publishes_a_tombstone(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    topic = topics["interactions"]
    now = int(time.time()) - 3600
    good = [react("a", "b", now), react("c", "b", now + 1), event("FeatureTried", "a", now + 2, feature_id="f")]
    unknown = react("a", "b", now)
    unknown.type = "catalyst.events.v1.Unheard"
    invalid = react("c", "", now)
    poison = [b"\x00garbage\xff", unknown.SerializeToString(), invalid.SerializeToString()]
    produce(kafka_bootstrap, topic, good[:2])
    produce_raw(kafka_bootstrap, topic, [(b"a", poison[0]), (b"a", poison[1]), (b"c", poison[2])])
    produce(kafka_bootstrap, topic, good[2:])
    worker = WorkerProcess(common_env, tmp_path).start()
    client = redis.Redis.from_url(redis_url)
    try:
        wait_processed(worker, kafka_bootstrap, topic, redis_url)
        assert client.zscore(leaderboard("30d"), "b") is not None
        produce(kafka_bootstrap, topic, [event("EmployeeForgotten", "b", now + 10)])
        wait_processed(worker, kafka_bootstrap, topic, redis_url)
    finally:
        worker.stop()

    letters = [envelope_pb2.DeadLetter.FromString(v) for _, v in read_all(kafka_bootstrap, topics["deadletter"])]
    assert sorted(letter.value for letter in letters) == sorted(poison)
    reasons = " | ".join(letter.reason for letter in letters)
    assert "undecodable" in reasons and "unknown event type" in reasons and "post_author_id" in reasons
    assert all(letter.source_topic == topic and letter.consumer == "engagement" for letter in letters)

    as_of = as_of_day(good)
    want = expected([*good, event("EmployeeForgotten", "b", now + 10)], as_of)
    assert sorted(want) == ["a", "c"]
    assert await stored(redis_url, topic, ["a", "b", "c"], as_of) == want
    assert not client.exists(state_key("b")) and client.exists(gone_key("b"))
    assert client.zscore(leaderboard("30d"), "b") is None
    last = [v for k, v in read_all(kafka_bootstrap, topics["engagement"]) if k == b"b"][-1]
    assert last is None  # tombstone: compaction removes the employee's figures


async def test_redis_outage_is_retried_inside_the_loop(
    common_env: dict[str, str],
    kafka_bootstrap: str,
    topics: dict[str, str],
    redis_url: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    events = history(seed=5, employees=30, days=60, per_day=40)
    topic = topics["interactions"]
    half = len(events) // 2
    produce(kafka_bootstrap, topic, events[:half])
    worker = WorkerProcess(common_env, tmp_path).start()
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: client.get("eng:wm") is not None, 120, "a first batch")
        redis_server.stop()
        produce(kafka_bootstrap, topic, events[half:])
        time.sleep(4)
        assert worker.alive(), worker.log_tail()
        redis_server.start()
        wait_processed(worker, kafka_bootstrap, topic, redis_url)
    finally:
        worker.stop()
    assert "retrying" in worker.log_path.read_text()
    as_of = as_of_day(events)
    want = expected(events, as_of)
    assert await stored(redis_url, topic, sorted(want), as_of) == want


async def test_crossing_a_day_re_publishes_the_figures_of_inactive_employees(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    topic = topics["interactions"]
    start = (int(time.time()) // DAY - 20) * DAY + 3600
    produce(kafka_bootstrap, topic, [post("x", start), post("y", start + 60)])
    worker = WorkerProcess(common_env, tmp_path).start()
    try:
        wait_processed(worker, kafka_bootstrap, topic, redis_url)
        first = latest_scores(kafka_bootstrap, topics["engagement"])["x"]
        assert first is not None and first.score_changed.windows["7d"].content > 0
        produce(kafka_bootstrap, topic, [post("y", start + 8 * DAY)])  # only y is active; event time moves on
        wait_until(
            lambda: (
                (latest_scores(kafka_bootstrap, topics["engagement"])["x"].score_changed.version >> 32)
                == start // DAY + 8
            ),
            120,
            "x's figures to be re-published as of the new day",
        )
    finally:
        worker.stop()
    x = latest_scores(kafka_bootstrap, topics["engagement"])["x"]
    assert x.score_changed.windows["7d"].content == 0  # the post left the 7-day window
    assert x.score_changed.windows["30d"].content == first.score_changed.windows["30d"].content
    assert x.score_changed.version > first.score_changed.version
    assert x.occurred_at.seconds >= start + 8 * DAY
