"""Backfill equals live, poison goes to the dead-letter topic, forgetting tombstones, Redis outages are retried
inside the loop, and a day crossed in event time re-publishes the figures of the inactive."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import hiredis
import redis
import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2
from prometheus_client import CollectorRegistry

from services.common.pseudonyms import marker_key
from services.engagement.adapters.redis_store import GONE, WATERMARK, RedisStore, state_key
from services.engagement.adapters.retrying import Retrying
from services.engagement.model.state import ADD
from services.engagement.worker.metrics import WorkerMetrics
from tests.conftest import RedisServer
from tests.integration.engagement.harness import (
    MODEL,
    PublisherProcess,
    WorkerProcess,
    as_of_day,
    assert_same_figures,
    expected,
    latest_scores,
    produce,
    produce_raw,
    read_all,
    stored,
    wait_committed,
    wait_published,
    wait_until,
)
from tests.integration.engagement.test_worker import history
from tests.unit.engagement.builders import DAY, event, post, react
from tests.unit.engagement.fakes import MARKER_TTL, PSEUDONYM_KEY


def test_a_backfill_gives_the_same_figures_as_live_processing(
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
        for start in range(0, len(events), chunk):  # live: each chunk applied before the next one arrives
            produce(kafka_bootstrap, topic, events[start : start + chunk])
            wait_committed(live, kafka_bootstrap, topic)
    finally:
        live.stop()

    backfill_url = redis_server.url(1)
    backfill = WorkerProcess(
        {**common_env, "CATALYST_REDIS_URL": backfill_url}, tmp_path, CATALYST_WORKER_BATCH_SIZE="5000"
    ).start()
    try:
        wait_committed(backfill, kafka_bootstrap, topic)
    finally:
        backfill.stop()

    as_of = as_of_day(events)
    want = expected(kafka_bootstrap, topic, as_of)
    employees = sorted(want)
    live_figures = stored(redis_url, employees, as_of)
    assert_same_figures(stored(backfill_url, employees, as_of), live_figures)
    assert_same_figures(live_figures, want)


def test_poison_goes_to_the_dead_letter_topic_and_forgetting_publishes_a_tombstone(
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
    publisher = PublisherProcess(common_env, tmp_path).start()
    client = redis.Redis.from_url(redis_url)
    as_of = as_of_day(good)
    try:
        wait_committed(worker, kafka_bootstrap, topic)
        wait_published(kafka_bootstrap, topics["engagement"], expected(kafka_bootstrap, topic, as_of), as_of)
        assert worker.metric("catalyst_engagement_dead_letters_total", reason="undecodable") == 1
        produce(kafka_bootstrap, topic, [event("EmployeeForgotten", "b", now + 10)])
        wait_committed(worker, kafka_bootstrap, topic)
        assert worker.metric("catalyst_engagement_tombstones_total") == 1
    finally:
        worker.stop()
        publisher.stop()

    letters = [envelope_pb2.DeadLetter.FromString(v) for _, v in read_all(kafka_bootstrap, topics["deadletter"])]
    assert sorted(letter.value for letter in letters) == sorted(poison)
    reasons = " | ".join(letter.reason for letter in letters)
    assert "undecodable" in reasons and "unknown event type" in reasons and "post_author_id" in reasons
    assert all(letter.source_topic == topic and letter.consumer == "engagement" for letter in letters)

    want = expected(kafka_bootstrap, topic, as_of)
    assert sorted(want) == ["a", "c"]
    assert_same_figures(stored(redis_url, ["a", "b", "c"], as_of), want)
    assert not client.exists(state_key("b"))  # only the keyed marker the merge script refuses stays
    assert client.ttl(marker_key(GONE, PSEUDONYM_KEY, "b")) > 0
    assert latest_scores(kafka_bootstrap, topics["engagement"])["b"] is None  # compaction drops b's figures


def test_redis_outage_is_retried_inside_the_loop(
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
        wait_until(lambda: client.get(WATERMARK) is not None, 120, "a first batch")
        redis_server.stop()
        produce(kafka_bootstrap, topic, events[half:])
        wait_until(
            lambda: worker.metric("catalyst_engagement_redis_retries_total", op="apply") > 0,
            60,
            "the worker to retry its write while Redis is away",
        )
        redis_server.start()
        wait_committed(worker, kafka_bootstrap, topic)
    finally:
        worker.stop()
    assert "retrying" in worker.log_path.read_text()
    as_of = as_of_day(events)
    want = expected(kafka_bootstrap, topic, as_of)
    assert_same_figures(stored(redis_url, sorted(want), as_of), want)


async def _loading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Redis that restarted and is still reading its data back: every command gets LOADING."""
    commands = hiredis.Reader()
    while data := await reader.read(65536):
        commands.feed(data)
        while commands.gets() is not False:
            writer.write(b"-LOADING Redis is loading the dataset in memory\r\n")
        await writer.drain()
    writer.close()


async def test_a_redis_still_loading_its_data_after_a_restart_is_waited_out() -> None:
    """The worker's write meets LOADING when it retries right after Redis came back (the outage test above
    meets it by chance): a transient fault like a refused connection, retried, never raised."""
    server = await asyncio.start_server(_loading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    registry = CollectorRegistry()
    client = aioredis.Redis(host="127.0.0.1", port=port)
    store = RedisStore(client, MODEL.keep_days, PSEUDONYM_KEY, MARKER_TTL)
    write = {"a": [(0, [(0, (ADD, "20000p", "1", 20_000))])]}
    call = asyncio.ensure_future(
        Retrying(WorkerMetrics(registry), 0.05).redis("apply", lambda: store.apply(write, {}, 0))
    )

    def retries() -> float:
        return registry.get_sample_value("catalyst_engagement_redis_retries_total", {"op": "apply"}) or 0.0

    try:
        deadline = time.monotonic() + 30
        while retries() < 3 and not call.done():
            assert time.monotonic() < deadline, "no retry within 30 s"
            await asyncio.sleep(0.05)
        assert not call.done(), f"the write gave up: {call.exception()!r}"
    finally:
        call.cancel()
        await store.batch.close()
        await client.aclose()
        server.close()


def test_crossing_a_day_re_publishes_the_figures_of_inactive_employees(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    topic = topics["interactions"]
    start = (int(time.time()) // DAY - 20) * DAY + 3600
    # y responds to x's post and x to y's: posts count as far as colleagues respond (docs/scoring-model.md)
    exchange = [react("y", "x", start + 120), react("x", "y", start + 180)]
    produce(kafka_bootstrap, topic, [post("x", start), post("y", start + 60), *exchange])
    worker = WorkerProcess(common_env, tmp_path).start()
    publisher = PublisherProcess(common_env, tmp_path).start()
    try:
        wait_committed(worker, kafka_bootstrap, topic)
        first_day = start // DAY
        wait_published(kafka_bootstrap, topics["engagement"], expected(kafka_bootstrap, topic, first_day), first_day)
        first = latest_scores(kafka_bootstrap, topics["engagement"])["x"]
        assert first is not None and first.score_changed.windows["7d"].content > 0
        produce(kafka_bootstrap, topic, [post("y", start + 8 * DAY)])  # only y is active; event time moves on
        wait_committed(worker, kafka_bootstrap, topic)
        later = first_day + 8
        wait_published(kafka_bootstrap, topics["engagement"], expected(kafka_bootstrap, topic, later), later)
        assert publisher.metric("catalyst_engagement_publisher_rollover_marked_total") >= 1
    finally:
        worker.stop()
        publisher.stop()
    x = latest_scores(kafka_bootstrap, topics["engagement"])["x"]
    assert x is not None
    assert x.score_changed.windows["7d"].content == 0  # the post left the 7-day window
    assert x.score_changed.windows["30d"].content == first.score_changed.windows["30d"].content
    assert x.score_changed.version > first.score_changed.version
    assert x.occurred_at.seconds >= start + 8 * DAY
