"""The real worker (`python -m services.engagement.worker`) and publisher (`python -m services.engagement.publisher`)
against the real broker and Redis: whatever interrupts the worker, Redis ends up with the states of
`expected_states` for the records on the topic, and the published figures are the model's figures of them."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import redis
from catalyst.events.v1 import envelope_pb2

from services.engagement.adapters.redis_store import WATERMARK, dept_members
from tests.integration.engagement.harness import (
    PublisherProcess,
    WorkerProcess,
    as_of_day,
    assert_same_figures,
    expected,
    group_members,
    groups,
    produce,
    raw_fields,
    read_all,
    reset_group,
    stored,
    wait_committed,
    wait_published,
    wait_until,
)
from tests.unit.engagement.builders import DAY, mixed_history

PARTITIONS = 6


def history(seed: int = 7, employees: int = 60, days: int = 120, per_day: int = 100) -> list[envelope_pb2.Envelope]:
    end = (int(time.time()) // DAY) * DAY - 1
    return list(mixed_history(employees=employees, days=days, per_day=per_day, end_seconds=end, seed=seed))


def test_sigkill_mid_stream_then_restart_leaves_the_expected_states_and_publishes_their_figures(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    events = history()
    topic = topics["interactions"]
    half = len(events) // 2
    produce(kafka_bootstrap, topic, events[:half])
    worker = WorkerProcess(common_env, tmp_path, CATALYST_WORKER_BATCH_SIZE="200").start()
    publisher = PublisherProcess(common_env, tmp_path).start()
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: client.get(WATERMARK) is not None, 120, "the worker to apply a first batch")
        produce(kafka_bootstrap, topic, events[half:])
        worker.kill()  # SIGKILL mid-stream: no commit, no cleanup
        worker = WorkerProcess(common_env, tmp_path, group=worker.group).start()
        wait_committed(worker, kafka_bootstrap, topic)
        assert b'"ok"' in worker.health()
        assert worker.metric("catalyst_engagement_events_total", kind="PostCreated") > 0
        assert worker.metric("catalyst_engagement_event_to_score_seconds_count") > 0

        as_of = as_of_day(events)
        want = expected(kafka_bootstrap, topic, as_of)
        assert_same_figures(stored(redis_url, sorted(want), as_of), want)
        wait_published(kafka_bootstrap, topics["engagement"], want, as_of)
        assert publisher.metric("catalyst_engagement_publisher_score_changes_total") > 0
    finally:
        worker.stop()
        publisher.stop()

    published = len(read_all(kafka_bootstrap, topics["engagement"]))
    people = len({e.employee_id for e in events})
    days = as_of - min(e.occurred_at.seconds for e in events) // DAY + 1
    # Coalesced: at most about two ScoreChanged per person and day walked, as of its start and as of its end.
    assert published <= people * (2 * days + 5)


def test_a_consumer_group_reset_re_run_changes_nothing(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    events = history(seed=3, employees=40, days=110, per_day=60)
    topic = topics["interactions"]
    produce(kafka_bootstrap, topic, events)
    worker = WorkerProcess(common_env, tmp_path).start()
    try:
        wait_committed(worker, kafka_bootstrap, topic)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert group_members(kafka_bootstrap, worker.group) == []  # left the group on SIGTERM, no session timeout
    as_of = as_of_day(events)
    want = expected(kafka_bootstrap, topic, as_of)
    assert_same_figures(stored(redis_url, sorted(want), as_of), want)
    before = raw_fields(redis_url, sorted(want))  # every field, offset marks included

    reset_group(kafka_bootstrap, worker.group, topic, PARTITIONS)  # back to the beginning
    again = WorkerProcess(common_env, tmp_path, group=worker.group).start()
    try:
        wait_committed(again, kafka_bootstrap, topic)
        duplicates = again.metric("catalyst_engagement_duplicates_total")
    finally:
        again.stop()
    assert raw_fields(redis_url, sorted(want)) == before  # not a single op applied twice
    assert duplicates > 0
    client = redis.Redis.from_url(redis_url)
    registered = {e.employee_id: e.department_id for e in events if e.type.endswith("EmployeeRegistered")}
    sizes = Counter(registered.values())
    assert {d: client.scard(dept_members(d)) for d in sizes} == sizes  # department membership counts


def test_a_rebalance_between_two_workers_changes_nothing(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    events = history(seed=9, employees=50, days=110, per_day=60)
    topic = topics["interactions"]
    first = WorkerProcess(common_env, tmp_path, CATALYST_WORKER_BATCH_SIZE="200").start()
    second = WorkerProcess(common_env, tmp_path, group=first.group, CATALYST_WORKER_BATCH_SIZE="200").start()
    publisher = PublisherProcess(common_env, tmp_path).start()
    client = redis.Redis.from_url(redis_url)
    try:
        produce(kafka_bootstrap, topic, events[: len(events) // 2])
        wait_until(lambda: client.get(WATERMARK) is not None, 120, "a first batch")
        # only the workers' own consumers are members: faust's consumer never joins any group
        wanted = [f"{first.group}-worker"] * 2
        wait_until(lambda: group_members(kafka_bootstrap, first.group) == wanted, 60, "both workers in the group")
        assert not {g for g in groups(kafka_bootstrap) if g.startswith(first.group) and g != first.group}
        produce(kafka_bootstrap, topic, events[len(events) // 2 :])
        first.kill()  # its partitions move to the second worker after the session timeout
        wait_committed(second, kafka_bootstrap, topic)
        as_of = as_of_day(events)
        want = expected(kafka_bootstrap, topic, as_of)
        assert_same_figures(stored(redis_url, sorted(want), as_of), want)
        wait_published(kafka_bootstrap, topics["engagement"], want, as_of)
    finally:
        second.stop()
        publisher.stop()
